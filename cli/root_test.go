package cli

import (
	"fmt"
	"os"
	"testing"
)

// TestMain runs the tests from the repository's root: they name fixtures
// (examples/, disk/testdata/, nixbuild/testdata/) and build the homestaker
// binary (.) relative to it.
func TestMain(m *testing.M) {
	if err := os.Chdir(".."); err != nil {
		fmt.Fprintln(os.Stderr, "cli tests:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
