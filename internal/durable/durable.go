// Package durable holds the one step of crash-safe file writing that every
// writer of linkctl needs and the standard library leaves out: after a
// rename, the directory itself must be fsynced, or a crash can forget the
// rename (the Maildir's new/ entry, the seen-store's rewritten log).
package durable

import "os"

// SyncDir fsyncs the directory dir, making renames and creations in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
