package readme_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The files whose code the README may quote: this package's tests and the
// examples' main.go.
var sources = []string{
	"readme_test.go",
	"../../chi/main.go",
	"../../echo/main.go",
	"../../gin/main.go",
}

var goBlock = regexp.MustCompile("(?ms)^[ \t]*```go\n(.*?)^[ \t]*```")

// Every Go snippet of README.md is found, verbatim, in one of the sources,
// at any indentation, so that it compiles.
func TestSnippetsAreCompiled(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var code []string
	for _, p := range sources {
		b, err := os.ReadFile(filepath.FromSlash(p))
		if err != nil {
			t.Fatal(err)
		}
		code = append(code, string(b))
	}
	blocks := goBlock.FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no Go snippet")
	}
	for _, m := range blocks {
		snippet := m[1]
		if !found(snippet, code) {
			t.Errorf("this README snippet is in no compiled file (%s):\n%s", strings.Join(sources, ", "), snippet)
		}
	}
}

// found reports whether snippet, indented by 0 to 3 tabs, is in one of
// the sources.
func found(snippet string, sources []string) bool {
	lines := strings.Split(strings.TrimRight(snippet, "\n"), "\n")
	for depth := range 4 {
		indented := make([]string, len(lines))
		for i, l := range lines {
			if l != "" {
				l = strings.Repeat("\t", depth) + l
			}
			indented[i] = l
		}
		want := strings.Join(indented, "\n") + "\n"
		for _, src := range sources {
			if strings.Contains(src, want) {
				return true
			}
		}
	}
	return false
}
