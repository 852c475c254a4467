// Package attacks holds the attack suite: one table of attacks on a SMART
// app built with chiware, each run through real HTTP against the fake EHR of
// core/smarttest, each asserting the error code, the HTTP status, that
// nothing was stored, and that no token leaked. SECURITY.md at the
// repository root names every row.
package attacks
