package rampart

# What the two policies share, decided as policy.Authorizer decides.
#
# A path pattern is a glob over "/"-separated segments: a {name} is "?*"
# (one non-empty segment), {name...} and a trailing "/" are "**" (any
# rest, possibly empty), {$} is the trailing "/" alone.

# valid_caller is ca.ValidateServiceName: "*" and "" are no service.
valid_caller if regex.match(`^[a-z0-9-]{1,63}$`, input.caller)

# clean_path holds for a path that ServeMux would not redirect: absolute,
# without an empty segment before the last, "." or "..". No rule allows
# another path.
clean_path if {
	startswith(input.path, "/")
	parts := split(substring(input.path, 1, -1), "/")
	not unclean(parts)
}

unclean(parts) if {
	some i, p in parts
	p == ""
	i < count(parts) - 1
}

unclean(parts) if {
	some p in parts
	p in {".", ".."}
}
