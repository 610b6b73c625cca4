module github.com/golens/golens

go 1.26
