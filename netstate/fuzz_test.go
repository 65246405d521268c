package netstate

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func addRecorded(f *testing.F, d Dump) {
	for _, m := range machines {
		b, err := os.ReadFile(filepath.Join("testdata", m, d.FileName()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParseAddr: any input gives interfaces or an error, and whatever
// parses can be carried over without a panic; a carry file that is written
// reads back as the same state.
func FuzzParseAddr(f *testing.F) {
	addRecorded(f, DumpAddr)
	f.Add([]byte(`[{"ifname":"eth0","link_type":"ether","address":"aa:bb:cc:dd:ee:ff","addr_info":[{"family":"inet6","local":"fe80::1%eth0","prefixlen":64}]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ifs, err := ParseAddr(data)
		if err != nil {
			return
		}
		s := State{Interfaces: ifs}
		c := s.Carried()
		if !reflect.DeepEqual(c.Carried(), c) {
			t.Fatalf("Carried is not idempotent for %q", data)
		}
		b, err := s.CarryJSON()
		if err != nil {
			return
		}
		back, err := ParseCarry(b)
		if err != nil {
			t.Fatalf("CarryJSON wrote a file ParseCarry refuses: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the state:\n%+v\n%+v", back, c)
		}
	})
}

// FuzzParseRoutes: any input gives routes or an error, never a panic, and
// parsed routes are normalised (a destination is default or a masked prefix).
func FuzzParseRoutes(f *testing.F) {
	addRecorded(f, DumpRoute4)
	addRecorded(f, DumpRoute6)
	f.Add([]byte(`[{"dst":"default","via":{"family":"inet6","host":"fe80::1"},"dev":"eth0"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fam := range []string{"inet", "inet6"} {
			rs, err := ParseRoutes(data, fam)
			if err != nil {
				continue
			}
			for _, r := range rs {
				if again, err := normalDestination(r.Destination, fam); err != nil || again != r.Destination {
					t.Fatalf("destination %q not normalised (%q, %v)", r.Destination, again, err)
				}
			}
		}
	})
}

// FuzzParseCarry: a carry file either is refused or survives a round trip
// through CarryJSON unchanged when it has an interface to carry.
func FuzzParseCarry(f *testing.F) {
	for _, m := range machines {
		b, err := os.ReadFile(filepath.Join("testdata", m, "carry.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseCarry(data)
		if err != nil {
			return
		}
		b, err := s.CarryJSON()
		if err != nil {
			return
		}
		if _, err := ParseCarry(b); err != nil {
			t.Fatalf("re-encoded carry file refused: %v\n%s", err, b)
		}
	})
}
