package core

// PublicAddress exposes the address guard's classifier to the external
// tests in outbound_test.go.
var PublicAddress = publicAddress
