package attacks

// cookieAttacks lists the attacks on the browser session: its cookie and the sessions a launch creates.
func cookieAttacks() []attack {
	return nil
}
