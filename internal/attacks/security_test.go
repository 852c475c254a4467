package attacks

import (
	"os"
	"strings"
	"testing"
)

// SECURITY.md names every row of the table, in backquotes, beside the
// threat it answers: a row added, renamed or removed shows up here until
// the threat model says so too.
func TestSecurityNamesEveryRow(t *testing.T) {
	doc, err := os.ReadFile("../../SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range allAttacks() {
		if !strings.Contains(string(doc), "`"+a.name+"`") {
			t.Errorf("SECURITY.md does not name the row %s", a.name)
		}
	}
}
