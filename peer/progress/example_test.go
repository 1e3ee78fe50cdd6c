package progress_test

import (
	"os"
	"time"

	"github.com/p2plink/p2plink/peer/progress"
)

// A reporter fed by a transfer's progress callback (for xfer:
// opts.Progress = func(p xfer.Progress) { r.Update(p.Name, p.Done, p.Total) }).
// The clock is fake here so that the output is fixed.
func Example() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := progress.New(os.Stdout, progress.Options{Mode: progress.Lines, Label: "send",
		Now: func() time.Time { return now }})
	for done := int64(0); done <= 4*11520; done += 1152 {
		r.Update("report.pdf", done, 4*11520)
		now = now.Add(100 * time.Millisecond)
	}
	r.Finish()
	// Output:
	// send: report.pdf:   0% 0 B of 45.0 KiB, 0 B/s, ETA --:--
	// send: report.pdf:  25% 11.2 KiB of 45.0 KiB, 11.2 KiB/s, ETA 0:03
	// send: report.pdf:  50% 22.5 KiB of 45.0 KiB, 11.2 KiB/s, ETA 0:02
	// send: report.pdf:  75% 33.8 KiB of 45.0 KiB, 11.2 KiB/s, ETA 0:01
	// send: report.pdf: 100% 45.0 KiB of 45.0 KiB, 11.2 KiB/s, ETA 0:00
	// send: report.pdf: 100% 45.0 KiB of 45.0 KiB, 11.0 KiB/s, done in 0:04
}
