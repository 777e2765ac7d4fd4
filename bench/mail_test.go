package bench_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/mail"
	"github.com/tenantry/tenantry/mailer"
	"github.com/tenantry/tenantry/smtp/smtptest"
	"github.com/tenantry/tenantry/sqldb"
)

// mailBatch is how many mails each iteration of BenchmarkMailThroughput
// queues at once.
const mailBatch = 1000

// BenchmarkMailThroughput measures how fast mails go through the job queue
// to a local SMTP server: per iteration, 1,000 deliveries of the test
// template, to 1,000 addresses, are queued in one transaction (a delivery
// row, its event and its job each, as any mail), then the timer runs until
// every one is recorded as sent. The app is started in the benchmark
// process as a worker with the default 10 job workers; the SMTP server is
// Mailpit on loopback, without TLS. It checks that Mailpit received each
// mail once.
func BenchmarkMailThroughput(b *testing.B) {
	for _, shape := range apptest.Shapes {
		b.Run("shape="+string(shape), func(b *testing.B) {
			apptest.RequireShape(b, shape)
			localEngines(b)
			srv := smtptest.Start(b, smtptest.Options{})
			env := apptest.Start(b, apptest.ConfigWith(b, shape, apptest.MailEnviron(srv)))
			ctx := context.Background()
			db := env.App.Engines.Control
			sent := func() int {
				var n int
				if err := db.QueryRow(ctx, `SELECT count(*) FROM mail_deliveries WHERE status = 'sent'`).Scan(&n); err != nil {
					b.Fatal(err)
				}
				return n
			}
			total := 0
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				err := db.InTx(ctx, func(tx sqldb.Tx) error {
					for j := range mailBatch {
						d := &mailer.Delivery{Kind: mail.KindTest, To: fmt.Sprintf("bench-%d-%d@example.com", i, j), Locale: "en",
							Params: mailer.Params{"time": "now"}}
						if err := env.App.Mailer.Enqueue(ctx, tx, d); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				total += mailBatch
				b.StartTimer()
				deadline := time.Now().Add(10 * time.Minute)
				for sent() < total {
					if time.Now().After(deadline) {
						b.Fatalf("%d of %d mails sent after 10 minutes", sent(), total)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			elapsed := b.Elapsed()
			b.StopTimer()
			b.ReportMetric(float64(total)/elapsed.Seconds(), "mails/s")
			if got := len(srv.Messages(b)); got != total {
				b.Errorf("Mailpit received %d mails, want %d", got, total)
			}
		})
	}
}
