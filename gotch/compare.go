package gotch

import "errors"

// AllClose reports whether every element of t is close to other's
// (broadcast): |t − other| ≤ atol + rtol·|other|, as torch.allclose(t,
// other, rtol, atol) (torch's defaults are rtol 1e-5, atol 1e-8); a NaN is
// close to nothing. The two must have the same dtype, and shapes that do
// not broadcast are an error naming both.
func (t *Tensor) AllClose(other *Tensor, rtol, atol float64) (bool, error) {
	if err := needTensor("AllClose", "self", t); err != nil {
		return false, err
	}
	if err := needTensor("AllClose", "other", other); err != nil {
		return false, err
	}
	sc := NewScope()
	defer sc.Close()
	x, err := sc.Borrow(t)
	if err != nil {
		return false, err
	}
	c, err := x.IsClose(other, rtol, atol, false)
	if err != nil {
		return false, renameOp(err, "AllClose")
	}
	all, err := c.All()
	if err != nil {
		return false, renameOp(err, "AllClose")
	}
	v, err := all.Item()
	if err != nil {
		return false, renameOp(err, "AllClose")
	}
	return v != 0, nil
}

// MustAllClose is AllClose that panics with a *Error.
func (t *Tensor) MustAllClose(other *Tensor, rtol, atol float64) bool {
	ok, err := t.AllClose(other, rtol, atol)
	must(err)
	return ok
}

// renameOp makes an op's *Error name the op the caller called.
func renameOp(err error, op string) error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.Op = op
		return &c
	}
	return err
}
