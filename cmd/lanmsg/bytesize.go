package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lanmsg/lanmsg/transport"
)

// byteSize is a size flag: a number of bytes, optionally with a unit
// (B, KiB, MiB, GiB, or KB, MB, GB as powers of 1000).
type byteSize int

var units = []struct {
	suffix string
	n      int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
}

func (b *byteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	mult := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return fmt.Errorf("%q is not a size: want a positive whole number of bytes, optionally with a unit, such as 65536, 64KiB or 1MiB", string(text))
	}
	if n > transport.MaxPayloadLimit/mult {
		return fmt.Errorf("%q is too large: the limit is 1GiB", string(text))
	}
	*b = byteSize(n * mult)
	return nil
}

func (b byteSize) String() string {
	n := int64(b)
	for i := 2; i >= 0; i-- { // GiB, MiB, KiB: the largest that divides n
		if u := units[i]; n >= u.n && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
