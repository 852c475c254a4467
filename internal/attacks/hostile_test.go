package attacks

// hostileEHRAttacks lists the attacks by an EHR the app accepts but that is hostile: mix-up, forged identity, secrets and redirects.
func hostileEHRAttacks() []attack {
	return nil
}
