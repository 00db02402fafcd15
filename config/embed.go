package config

import _ "embed"

// Minimal is the smallest useful config (minimal.yaml): one POP3 account
// delivering into the local MTA over SMTP.
//
//go:embed minimal.yaml
var Minimal []byte

// Reference is the fully commented config (reference.yaml) showing every
// key with its default and meaning: the user's config reference.
//
//go:embed reference.yaml
var Reference []byte
