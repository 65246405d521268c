package media

import (
	"fmt"
	"time"

	"github.com/homestaker/homestaker/report"
)

// meter turns byte counts into progress events with throughput and time
// left, at most one per interval plus the first and the last.
type meter struct {
	r      report.Reporter
	now    func() time.Time
	every  time.Duration
	action string // "writing /dev/sdb"
	total  int64
	start  time.Time
	last   time.Time
}

func (f *Flasher) meter(action string, total int64) *meter {
	every := f.ReportEvery
	if every == 0 {
		every = 250 * time.Millisecond
	}
	m := &meter{r: f.reporter(), now: f.now, every: every, action: action, total: total}
	m.start = m.now()
	m.last = m.start
	m.r.Report(report.Event{Step: FlashStep, Message: m.text(0, m.start), Total: total})
	return m
}

// update reports done bytes of total, unless the last event is too recent.
func (m *meter) update(done int64) {
	t := m.now()
	if done < m.total && t.Sub(m.last) < m.every {
		return
	}
	m.last = t
	m.r.Report(report.Event{Step: FlashStep, Message: m.text(done, t), Done: done, Total: m.total})
}

// rate is the average throughput so far in bytes per second, 0 when unknown.
func (m *meter) rate(done int64, t time.Time) float64 {
	secs := t.Sub(m.start).Seconds()
	if secs <= 0 || done <= 0 {
		return 0
	}
	return float64(done) / secs
}

func (m *meter) text(done int64, t time.Time) string {
	s := fmt.Sprintf("%s: %s of %s (%d%%)", m.action, byteText(done), byteText(m.total), done*100/max(m.total, 1))
	r := m.rate(done, t)
	if r == 0 {
		return s
	}
	s += ", " + rateText(r)
	if done < m.total {
		left := time.Duration(float64(m.total-done) / r * float64(time.Second))
		s += ", " + left.Round(time.Second).String() + " left"
	}
	return s
}

// rateText is a throughput in decimal megabytes per second, as dd prints it.
func rateText(bytesPerSecond float64) string {
	return fmt.Sprintf("%.0f MB/s", bytesPerSecond/1e6)
}
