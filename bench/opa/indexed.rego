package rampart

# The policy indexed as the Authorizer indexes it: the path globs for each
# method and caller, so that a decision reads only the globs that could
# admit it ("*": the rules for any caller; "*other": methods outside the
# nine that a policy may name).

default allow := false

allow if {
	valid_caller
	clean_path
	some caller in ["*", input.caller]
	some pattern in data.index[method_key][caller]
	glob.match(pattern, ["/"], input.path)
}

method_key := input.method if {
	data.index[input.method]
	input.method != "*other"
} else := "*other"
