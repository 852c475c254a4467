// Package benchmarks holds the benchmarks that compare the library's hot
// paths with their baselines in one run: the ready middleware against scs's
// own LoadAndSave, on memstore and on Redis. See BENCHMARKS.md at the
// repository root for the command and the figures.
package benchmarks
