package attacks

// outboundAttacks lists the attacks on the engine's outbound HTTP: the address guard and a caller's own HTTP client.
func outboundAttacks() []attack {
	return nil
}
