package flake

// Mark is the action as the review and the apply list it: "+ create",
// "~ update", "  same  ", "  keep  ".
func (a Action) Mark() string {
	switch a {
	case Create:
		return "+ create"
	case Update:
		return "~ update"
	case Keep:
		return "  keep  "
	case Overwrite:
		return "! overwrite"
	case Foreign:
		return "! theirs"
	case Remove:
		return "- remove"
	}
	return "  same  "
}
