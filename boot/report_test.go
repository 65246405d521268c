package boot

import (
	"strings"

	"github.com/homestaker/homestaker/report"
)

func reportTo(b *strings.Builder) report.Reporter {
	return report.Func(func(e report.Event) { b.WriteString(e.Message + "\n") })
}
