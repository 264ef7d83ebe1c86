package dynamodb

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// numberSyntax is a decimal number as DynamoDB reads one: digits, an
// optional point and an optional exponent (no fractions, no hex).
var numberSyntax = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// checkNumber validates a number as DynamoDB stores it (developer guide,
// HowItWorks.NamingRulesDataTypes, Number: "Numbers can have up to 38
// digits of precision", positive from 1E-130 to
// 9.9999999999999999999999999999999999999E+125, negative likewise).
func checkNumber(s string) *core.Error {
	s = strings.TrimSpace(s)
	m := numberSyntax.FindStringSubmatch(s)
	if m == nil {
		return validation("A value provided cannot be converted into a number")
	}
	mantissa, exp := m[1], 0
	if m[2] != "" {
		e, err := strconv.Atoi(m[2][1:])
		if err != nil {
			return validation("Number overflow. Attempting to store a number with magnitude larger than supported range")
		}
		exp = e
	}
	intPart, _, _ := strings.Cut(mantissa, ".")
	digits := strings.Replace(mantissa, ".", "", 1)
	lead := len(digits) - len(strings.TrimLeft(digits, "0"))
	significant := strings.TrimRight(digits[lead:], "0")
	if significant == "" {
		return nil // zero
	}
	if len(significant) > 38 {
		return validation("Attempting to store more than 38 significant digits in a Number")
	}
	// The power of ten of the first significant digit.
	sci := len(intPart) - lead - 1 + exp
	switch {
	case sci >= 126:
		return validation("Number overflow. Attempting to store a number with magnitude larger than supported range")
	case sci < -130:
		return validation("Number underflow. Attempting to store a number with magnitude smaller than supported range")
	}
	return nil
}
