package attacks

// inputAttacks lists the attacks through malformed values an EHR sends: ids, lifetimes, id_token claims, text shown on pages.
func inputAttacks() []attack {
	return nil
}
