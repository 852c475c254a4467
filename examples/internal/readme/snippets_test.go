package readme_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The files whose Example functions hold the README's snippets, one in
// each package a snippet documents.
var sources = []string{
	"../../../chiware/example_readme_test.go",
	"../../../echoware/example_readme_test.go",
	"../../../ginware/example_readme_test.go",
	"../../../sessions/example_readme_test.go",
	"../../../core/fhir/example_readme_test.go",
	"../../../core/smarttest/example_readme_test.go",
	"../../../core/example_readme_test.go",
}

var goBlock = regexp.MustCompile("(?ms)^[ \t]*```go\n(.*?)^[ \t]*```")

// Every Go snippet of README.md is found, verbatim at some indentation, in
// the body of an Example function of one of the sources.
func TestSnippetsAreExamples(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var examples []string
	for _, p := range sources {
		examples = append(examples, exampleBodies(t, filepath.FromSlash(p))...)
	}
	blocks := goBlock.FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no Go snippet")
	}
	for _, m := range blocks {
		if snippet := m[1]; !found(snippet, examples) {
			t.Errorf("this README snippet is in no Example function of %s:\n%s", strings.Join(sources, ", "), snippet)
		}
	}
}

// exampleBodies returns the source text of the body of each Example
// function in the file at path; it fails the test when there is none.
func exampleBodies(t *testing.T, path string) []string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Example") || fn.Body == nil {
			continue
		}
		start, end := fset.Position(fn.Body.Lbrace).Offset, fset.Position(fn.Body.Rbrace).Offset
		bodies = append(bodies, string(src[start:end+1]))
	}
	if len(bodies) == 0 {
		t.Fatalf("%s has no Example function", path)
	}
	return bodies
}

// found reports whether snippet, indented by 0 to 3 tabs, is whole lines
// of one of the Example bodies.
func found(snippet string, bodies []string) bool {
	lines := strings.Split(strings.TrimRight(snippet, "\n"), "\n")
	for depth := range 4 {
		indented := make([]string, len(lines))
		for i, l := range lines {
			if l != "" {
				l = strings.Repeat("\t", depth) + l
			}
			indented[i] = l
		}
		want := "\n" + strings.Join(indented, "\n") + "\n" // whole lines only
		for _, body := range bodies {
			if strings.Contains(body, want) {
				return true
			}
		}
	}
	return false
}
