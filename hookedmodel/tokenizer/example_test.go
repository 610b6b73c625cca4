package tokenizer_test

import (
	"fmt"

	"github.com/golens/golens/hookedmodel/tokenizer"
)

func ExampleTokenizer_Encode() {
	tk := tokenizer.GPT2()
	ids := tk.Encode("Hello world<|endoftext|>")
	fmt.Println(ids)
	fmt.Printf("%q\n", tk.Decode(ids))
	// Output:
	// [15496 995 50256]
	// "Hello world<|endoftext|>"
}

func ExampleTokenizer_ToStrTokens() {
	tk := tokenizer.GPT2()
	toks, err := tk.ToStrTokens("It's 2024, I'm coding.")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", toks)
	// Output:
	// ["<|endoftext|>" "It" "'s" " 2024" "," " I" "'m" " coding" "."]
}

func ExampleTokenizer_ToTokens() {
	tk := tokenizer.GPT2()
	ids, mask, err := tk.ToTokens([]string{"Hello world", "Hi"}, tokenizer.PaddingSide("left"))
	if err != nil {
		panic(err)
	}
	fmt.Println(ids, mask)
	// Output:
	// [[50256 15496 995] [50256 50256 17250]] [[1 1 1] [0 1 1]]
}
