package metal

// Classify is classify, for the external tests.
var Classify = classify
