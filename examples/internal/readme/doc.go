// Package readme holds, in its tests, every Go snippet of the repository's
// README.md, in code that compiles: Example functions and one test that
// runs. TestSnippetsAreCompiled fails when a snippet of the README is found
// neither here nor, verbatim, in an example's main.go, so the README can't
// drift from the code.
package readme
