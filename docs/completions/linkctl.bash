# bash completion for linkctl.
# Generated from linkctl's command table by: go test ./cmd/linkctl -run TestGeneratedDocs -update-docs
# Install: cp linkctl.bash /usr/share/bash-completion/completions/linkctl
_linkctl() {
	local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
	local cmds="daemon up down run etrn fetch flush status quit plan history check import-fetchmailrc init demo version dial pin"
	local globals="-c --config -h --help --log-format -v --vv"
	local i cmd=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case "${COMP_WORDS[i]}" in
		-c|--config|--log-format) ((i++)) ;;
		-*) ;;
		*) cmd="${COMP_WORDS[i]}"; break ;;
		esac
	done
	case "$prev" in
	--log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
	--auth|--ca-file|--commit-every|--config|--deliver|--drop-command|--etrn-domain|--etrn-server|--fetchlimit|--folder|--grace|--helo|--iface|--limit|--link|--mta|--password-command|--password-file|--port|--proto|--secret-dir|--server|--servername|--sessions|--state-dir|--timeout|--tls|--tls-pin|--to|--user|-c|-n|-o) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	esac
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$globals" -- "$cur")); else COMPREPLY=($(compgen -W "$cmds" -- "$cur")); fi
		return
	fi
	local flags=
	case "$cmd" in
	daemon) flags="--grace" ;;
	up) flags="--no-wait" ;;
	run) flags="--iface --wait" ;;
	etrn) flags="--ca-file --force --helo --password-file --port --timeout --tls --tls-pin --user" ;;
	fetch) flags="--auth --ca-file --commit-every --deliver --fetchall --fetchlimit --folder --keep --limit --no-received --password-file --proto --server --sessions --state-dir --timeout --tls --tls-pin --to --user --wait" ;;
	flush) flags="--no-wait --wait-lock" ;;
	status) flags="--json" ;;
	plan) flags="--json --link" ;;
	history) flags="--json -n" ;;
	check) flags="--offline --quiet" ;;
	import-fetchmailrc) flags="--force -o --secret-dir" ;;
	init) flags="--deliver --drop-command --etrn-domain --etrn-server --force --iface --keep --mta --no-check --non-interactive -o --password-command --password-file --proto --server --tls --to --user" ;;
	demo) flags="--clean --fast" ;;
	pin) flags="--ca-file --proto --servername --timeout --tls" ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags $globals" -- "$cur"))
	elif [[ $cmd == import-fetchmailrc ]]; then
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -F _linkctl linkctl
