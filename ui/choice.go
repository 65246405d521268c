package ui

import (
	"context"
	"io"

	"charm.land/huh/v2"
)

// AskChoice asks one question with a few answers, full screen, and returns
// the index of the chosen one. Ctrl-C returns an error.
func AskChoice(ctx context.Context, in io.Reader, out io.Writer, title string, options []string) (int, error) {
	choice := 0
	var opts []huh.Option[int]
	for i, o := range options {
		opts = append(opts, huh.NewOption(o, i))
	}
	form := huh.NewForm(huh.NewGroup(huh.NewSelect[int]().Title(title).Options(opts...).Value(&choice))).
		WithTheme(theme()).WithInput(in).WithOutput(out).WithWidth(78)
	if err := form.RunWithContext(ctx); err != nil {
		return 0, err
	}
	return choice, nil
}
