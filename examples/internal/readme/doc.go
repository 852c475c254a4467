// Package readme checks, in its test, that every Go snippet of the
// repository's README.md is part of an Example function of the package it
// documents (chiware/example_readme_test.go and its siblings), so that the
// snippets compile, the runnable ones run with their output checked, and
// pkg.go.dev shows them beside the API: the README can't drift from the
// code.
package readme
