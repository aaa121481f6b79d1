package rampart

# The policy as it reads: a list of rules, tried in turn, each with its
# callers ("*": any), its methods ("*": all; HEAD wherever GET) and its
# path globs.

default allow := false

allow if {
	valid_caller
	clean_path
	some rule in data.rules
	some caller in ["*", input.caller]
	rule.callers[caller]
	some method in ["*", input.method]
	rule.methods[method]
	some pattern in rule.globs
	glob.match(pattern, ["/"], input.path)
}
