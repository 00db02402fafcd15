package linkwatch

// UpIface is the watched link that is usable now (as Up judges), "" when
// none is: the link a hand-started run records in its history.
func UpIface(st State, watch []string) string {
	up, _, iface := upIface(st, watch)
	if !up {
		return ""
	}
	return iface
}
