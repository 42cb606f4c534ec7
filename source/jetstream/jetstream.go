// Package jetstream is a Source reading a NATS JetStream stream through a
// durable pull consumer, and the embedded server Graft runs by default.
//
// Acknowledgement: the consumer uses the AckAll policy, so acknowledging the
// engine's watermark sequence acknowledges everything before it. Messages
// delivered but not yet acknowledged are kept alive with in-progress acks, and
// a message the server redelivers anyway (its ack wait passed) is recognised
// by its stream sequence and dropped: a key is never applied out of order.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/graftdb/graft"
)

// KeyHeader carries a record's key when the publisher sets one.
const KeyHeader = "Graft-Key"

// Config names the stream and consumer.
type Config struct {
	Stream        string        // stream name, created if absent
	Subject       string        // subject the stream holds and graft reads
	Durable       string        // durable consumer name
	AckWait       time.Duration // server redelivers after this without an ack
	MaxAckPending int           // messages delivered and not acknowledged
	FetchBatch    int           // messages pulled at once
	// NoProgressAcks turns off the in-progress acks; redelivered messages
	// are then only dropped by sequence. For tests and diagnosis.
	NoProgressAcks bool
	// TrimAcked removes acknowledged messages from the stream (at most a
	// second or 1,000 acknowledgements after them): for the embedded
	// stream, which has no other reader. Never for a shared stream.
	TrimAcked bool
	// MaxBytes bounds the stream (0: no bound); a publish beyond it is
	// refused (ErrStreamFull), which HTTP ingest answers with 503 and
	// Retry-After. Set on the stream when Graft creates or opens it.
	MaxBytes int64
	// Contiguous says the stream holds only Graft's subject and nothing
	// but Graft's own trimming removes its messages (the embedded stream):
	// a stream sequence skipped between two deliveries, or between the
	// acknowledged position and the first delivery, is then a record the
	// server lost (a damaged block file it could not read). The source
	// reports it as a lost record (graft.Record.Lost), never skips it.
	Contiguous bool
	// AcceptedFile, when set, keeps the highest stream sequence the server
	// acknowledged to this process's publisher. At start, a stream that
	// ends before it lost accepted records (nats-server cuts a damaged
	// block file at its first bad message when it restarts after a crash),
	// reported as a lost record.
	AcceptedFile string
	// TrimmedFile, when set with TrimAcked, keeps the stream sequence up
	// to which Graft removed acknowledged records, written (and synced)
	// before each removal. nats-server writes a consumer's ack floor to
	// disk lazily: after a crash the floor can be behind the trim, and the
	// records between, committed then removed, would look lost. With the
	// file, only a stream that starts after the trim is a loss; without
	// it, a stream that starts after the ack floor is taken as trimmed.
	TrimmedFile string
}

// ErrStreamFull: the stream holds its MaxBytes; publish again later.
var ErrStreamFull = errors.New("the stream is full (stream.max_bytes): the backlog must shrink first")

// ErrConsumerStateDamaged: the server cannot open the durable consumer's
// stored state (where it stopped reading): nats-server's err_code 10012,
// "error creating store for consumer", after its state file was damaged.
var ErrConsumerStateDamaged = errors.New("its stored state (where it stopped reading) is damaged: the server cannot open it")

// DefaultConfig is the embedded default.
func DefaultConfig() Config {
	return Config{Stream: "GRAFT", Subject: "graft.writes", Durable: "graft", AckWait: 10 * time.Second, MaxAckPending: 20000, FetchBatch: 512}
}

// Source implements graft.Source over a JetStream consumer.
type Source struct {
	cfg  Config
	js   jetstream.JetStream
	st   jetstream.Stream
	cons jetstream.Consumer
	iter jetstream.MessagesContext
	log  *slog.Logger

	mu           sync.Mutex
	unacked      []jetstream.Msg // delivered, in stream order
	maxDelivered uint64
	redelivered  int64
	acked        uint64 // highest stream sequence acknowledged
	lastConsumer uint64 // the highest delivery sequence of the consumer seen
	gap          bool   // deliveries were missed: rewind once what is in flight is done
	gaps         int64
	trimmed      uint64 // stream sequence up to which acknowledged messages were removed
	opened       bool   // the consumer was opened once: maxDelivered is known
	lost         []graft.Record
	lostTotal    int64 // records reported lost

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var _ graft.Source = (*Source)(nil)

// EnsureStream creates the stream if it does not exist.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		sc := jetstream.StreamConfig{Name: cfg.Stream, Subjects: []string{cfg.Subject}, Storage: jetstream.FileStorage}
		if cfg.MaxBytes > 0 {
			sc.MaxBytes, sc.Discard = cfg.MaxBytes, jetstream.DiscardNew
		}
		s, err = js.CreateStream(ctx, sc)
	} else if err == nil && cfg.MaxBytes > 0 {
		if sc := s.CachedInfo().Config; sc.MaxBytes != cfg.MaxBytes || sc.Discard != jetstream.DiscardNew {
			sc.MaxBytes, sc.Discard = cfg.MaxBytes, jetstream.DiscardNew
			s, err = js.UpdateStream(ctx, sc)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Stream, err)
	}
	return s, nil
}

// New opens the stream (creating it if absent) and the durable consumer.
func New(ctx context.Context, nc *nats.Conn, cfg Config, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	st, err := EnsureStream(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, js: js, st: st, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.open(ctx); err != nil {
		return nil, err
	}
	if err := s.checkAccepted(ctx); err != nil {
		return nil, err
	}
	go s.keepAlive()
	return s, nil
}

// open creates (or finds) the durable consumer, rewinds it to its ack
// floor, and starts pulling. Messages delivered before and not
// acknowledged would otherwise come back only after the ack wait, behind
// newer ones, which reorders keys; after the rewind they come first, and
// those already in the pipeline are dropped by sequence (Fetch).
func (s *Source) open(ctx context.Context) error {
	cfg := s.cfg
	cons, err := s.st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: cfg.Durable, FilterSubject: cfg.Subject, AckPolicy: jetstream.AckAllPolicy,
		AckWait: cfg.AckWait, MaxAckPending: cfg.MaxAckPending, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeConsumerCreate && strings.Contains(apiErr.Description, "creating store") {
		return fmt.Errorf("consumer %s on stream %s: %w (nats-server: %s, err_code=%d)", cfg.Durable, cfg.Stream, ErrConsumerStateDamaged, apiErr.Description, apiErr.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("consumer %s on stream %s: %w", cfg.Durable, cfg.Stream, err)
	}
	if info, err := cons.Info(ctx); err == nil && info.NumAckPending > 0 {
		if _, err := s.st.ResetConsumer(ctx, cfg.Durable); err != nil {
			return fmt.Errorf("consumer %s: rewind to the acknowledged position (needs nats-server 2.14 or later): %w", cfg.Durable, err)
		}
		s.log.Info("consumer rewound to its acknowledged position", "stream", cfg.Stream, "redeliver", info.NumAckPending)
	}
	// The next delivery follows the consumer's delivered sequence; one
	// further on means deliveries this source did not see (Fetch).
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", cfg.Durable, err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(cfg.FetchBatch))
	if err != nil {
		return fmt.Errorf("consumer %s: %w", cfg.Durable, err)
	}
	var floor uint64
	if !s.opened {
		if floor, err = s.startFloor(ctx, info); err != nil {
			iter.Stop()
			return err
		}
	}
	s.mu.Lock()
	s.cons, s.iter, s.lastConsumer = cons, iter, info.Delivered.Consumer
	if !s.opened {
		s.opened = true
		s.acked, s.maxDelivered = floor, floor
	}
	s.mu.Unlock()
	return nil
}

// startFloor is the stream sequence the first delivery follows: the
// consumer's acknowledged position, or the stream's start when what is
// before it was removed on purpose. A consumer just created has no
// position; one whose floor is behind Graft's trim (a crash before
// nats-server wrote the floor) had those records committed.
func (s *Source) startFloor(ctx context.Context, info *jetstream.ConsumerInfo) (uint64, error) {
	floor := info.AckFloor.Stream
	si, err := s.st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", s.cfg.Stream, err)
	}
	if si.State.FirstSeq <= floor+1 {
		return floor, nil
	}
	start := si.State.FirstSeq - 1
	if s.cfg.TrimAcked && s.cfg.TrimmedFile != "" {
		trimmed, known, err := readMark(s.cfg.TrimmedFile)
		if err != nil {
			s.log.Warn("jetstream: the record of trimmed sequences is unreadable; the stream's start is taken as trimmed", "file", s.cfg.TrimmedFile, "err", err)
		} else if known {
			// Past the trim, the stream's start is a loss (Fetch reports
			// the sequences skipped).
			return max(floor, min(start, trimmed)), nil
		}
	}
	if s.cfg.TrimAcked || (info.AckFloor.Stream == 0 && info.Delivered.Stream == 0) {
		return start, nil
	}
	return floor, nil
}

// checkAccepted compares the stream's last sequence with the highest one
// ever acknowledged to a publisher (AcceptedFile): records between them
// were accepted and are gone.
func (s *Source) checkAccepted(ctx context.Context) error {
	if s.cfg.AcceptedFile == "" {
		return nil
	}
	accepted, _, err := readMark(s.cfg.AcceptedFile)
	if err != nil {
		s.log.Warn("jetstream: the record of accepted sequences is unreadable; a stream cut short at restart cannot be detected this time", "file", s.cfg.AcceptedFile, "err", err)
		return nil
	}
	info, err := s.st.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.cfg.Stream, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	from := max(info.State.LastSeq, s.acked) + 1
	if accepted < from {
		return nil
	}
	// The lost record gets a partition of its own: the sequences it names
	// are given again to new records from now on.
	s.lost = append(s.lost, graft.Record{
		Pos:  graft.Position{Partition: s.cfg.Stream + lostSuffix, Offset: int64(accepted)},
		Ref:  fmt.Sprintf("%d-%d", from, accepted),
		Lost: lostText(from, accepted, "the stream ends before them: its files were damaged and cut at restart"),
	})
	s.lostTotal += int64(accepted - from + 1)
	return writeMark(s.cfg.AcceptedFile, info.State.LastSeq)
}

// lostSuffix marks the partition of records lost off the stream's end.
const lostSuffix = ":lost"

func lostText(from, to uint64, why string) string {
	n := to - from + 1
	if n == 1 {
		return fmt.Sprintf("stream sequence %d (1 accepted record) cannot be read: %s. It is not in the graph; send it again from its origin", from, why)
	}
	return fmt.Sprintf("stream sequences %d-%d (%d accepted records) cannot be read: %s. They are not in the graph; send them again from their origin", from, to, n, why)
}

// failed turns an error of the message iterator into what the engine
// should do: stop (the source was closed, or ctx ended), or retry later (a
// missed heartbeat, a reconnection, a consumer the server lost, which is
// opened again here).
func (s *Source) failed(ctx context.Context, err error) error {
	select {
	case <-s.stop:
		return graft.ErrClosed
	default:
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		// The iterator stopped for good (the consumer was deleted, the
		// server restarted without it): open it again, from its ack floor.
		s.iter.Stop()
		if oerr := s.open(ctx); oerr != nil {
			return graft.NewError(graft.Transient, fmt.Errorf("jetstream %s: %w; reopening the consumer: %w", s.cfg.Stream, err, oerr))
		}
		s.log.Warn("jetstream: consumer opened again after it stopped", "stream", s.cfg.Stream, "err", err)
	}
	return graft.NewError(graft.Transient, fmt.Errorf("jetstream %s: %w", s.cfg.Stream, err))
}

// Fetch implements graft.Source: blocks for the first message, then takes
// what else has arrived, up to FetchBatch.
func (s *Source) Fetch(ctx context.Context) ([]graft.Record, error) {
	if s.gapped() {
		return nil, s.rewindAfterGap(ctx)
	}
	s.mu.Lock()
	recs := s.lost
	s.lost = nil
	s.mu.Unlock()
	if len(recs) > 0 {
		return recs, nil
	}
	for len(recs) < s.cfg.FetchBatch {
		var msg jetstream.Msg
		var err error
		if len(recs) == 0 {
			msg, err = s.iter.Next(jetstream.NextContext(ctx))
		} else {
			msg, err = s.iter.Next(jetstream.NextMaxWait(time.Millisecond))
		}
		if err != nil {
			if len(recs) > 0 {
				return recs, nil
			}
			return nil, s.failed(ctx, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		seq := meta.Sequence.Stream
		s.mu.Lock()
		if meta.Sequence.Consumer > s.lastConsumer+1 {
			// Deliveries this source never saw (dropped by a slow client,
			// or taken by another client of the consumer). They come back
			// behind newer messages, below the highest sequence seen: taking
			// them then reorders keys, dropping them loses them. Take
			// nothing more; once what is in flight is done, rewind.
			s.gap, s.gaps = true, s.gaps+1
			missed := meta.Sequence.Consumer - s.lastConsumer - 1
			s.mu.Unlock()
			s.log.Error("jetstream: deliveries missed; finishing the records in flight, then rewinding to the acknowledged position",
				"stream", s.cfg.Stream, "missed", missed, "consumer_seq", meta.Sequence.Consumer)
			return recs, nil
		}
		// A redelivery keeps the delivery sequence it first had: never
		// step back, or the next new delivery would look like a gap.
		s.lastConsumer = max(s.lastConsumer, meta.Sequence.Consumer)
		if seq <= s.maxDelivered {
			if seq > s.acked && !s.holds(seq) {
				// Never seen, yet behind what was: a delivery missed
				// earlier, now redelivered. Taking it reorders its key.
				s.gap, s.gaps = true, s.gaps+1
				s.mu.Unlock()
				s.log.Error("jetstream: a missed delivery came back late; finishing the records in flight, then rewinding to the acknowledged position",
					"stream", s.cfg.Stream, "seq", seq)
				return recs, nil
			}
			// The server redelivered a message already in the pipeline (or
			// done and about to be acknowledged): taking it again could
			// reorder its key.
			s.redelivered++
			s.mu.Unlock()
			continue
		}
		if s.cfg.Contiguous && seq > s.maxDelivered+1 {
			// Sequences the server skipped: it could not read them.
			from := s.maxDelivered + 1
			recs = append(recs, graft.Record{
				Pos: graft.Position{Partition: s.cfg.Stream, Offset: int64(seq - 1)}, Ref: fmt.Sprintf("%d-%d", from, seq-1),
				Lost: lostText(from, seq-1, "the server skipped them (a damaged stream file)"),
			})
			s.lostTotal += int64(seq - from)
		}
		s.maxDelivered = seq
		s.unacked = append(s.unacked, msg)
		s.mu.Unlock()
		recs = append(recs, graft.Record{
			Value: msg.Data(), Key: msg.Headers().Get(KeyHeader), Arrived: meta.Timestamp,
			Pos: graft.Position{Partition: s.cfg.Stream, Offset: int64(seq)}, Version: int64(seq),
		})
	}
	return recs, nil
}

// Ack implements graft.Source: one AckAll acknowledgement for the watermark.
func (s *Source) Ack(ctx context.Context, pos graft.Position) error {
	if pos.Partition != s.cfg.Stream {
		return nil // a loss off the stream's end (checkAccepted): nothing to acknowledge
	}
	s.mu.Lock()
	var last jetstream.Msg
	i := 0
	for ; i < len(s.unacked); i++ {
		meta, _ := s.unacked[i].Metadata()
		if int64(meta.Sequence.Stream) > pos.Offset {
			break
		}
		last = s.unacked[i]
	}
	s.unacked = s.unacked[i:]
	s.mu.Unlock()
	if last == nil {
		return nil
	}
	if err := last.DoubleAck(ctx); err != nil {
		return err
	}
	meta, _ := last.Metadata()
	s.mu.Lock()
	s.acked = max(s.acked, meta.Sequence.Stream)
	trim := s.cfg.TrimAcked && s.acked-s.trimmed >= 1000
	s.mu.Unlock()
	if trim {
		s.trim(ctx)
	}
	return nil
}

// trim removes the acknowledged messages: everything at or before the ack
// floor is done, so the stream's disk holds the backlog only. It runs every
// 1,000 acknowledgements and on the keep-alive tick.
func (s *Source) trim(ctx context.Context) {
	s.mu.Lock()
	upTo, from := s.acked, s.trimmed
	s.mu.Unlock()
	if upTo <= from {
		return
	}
	if s.cfg.TrimmedFile != "" {
		// Recorded first: a removal the record does not cover would be
		// taken for a loss at the next start.
		if err := writeMark(s.cfg.TrimmedFile, upTo); err != nil {
			s.log.Warn("jetstream: recording the trim failed; acknowledged messages stay until it works", "err", err)
			return
		}
	}
	if err := s.st.Purge(ctx, jetstream.WithPurgeSequence(upTo+1)); err != nil {
		s.log.Warn("jetstream: removing acknowledged messages failed; retried later", "err", err)
		return
	}
	s.mu.Lock()
	s.trimmed = max(s.trimmed, upTo)
	s.mu.Unlock()
}

// holds reports whether a stream sequence is delivered and not yet
// acknowledged; s.mu held.
func (s *Source) holds(seq uint64) bool {
	i := sort.Search(len(s.unacked), func(i int) bool {
		m, _ := s.unacked[i].Metadata()
		return m.Sequence.Stream >= seq
	})
	if i == len(s.unacked) {
		return false
	}
	m, _ := s.unacked[i].Metadata()
	return m.Sequence.Stream == seq
}

func (s *Source) gapped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gap
}

// rewindAfterGap waits (returning a healable error, so that the engine
// retries) until every record delivered before the gap is acknowledged,
// then rewinds the consumer to its ack floor: the missed deliveries come
// again, in order, before anything newer.
func (s *Source) rewindAfterGap(ctx context.Context) error {
	s.mu.Lock()
	inFlight := len(s.unacked)
	s.mu.Unlock()
	if inFlight > 0 {
		return graft.NewError(graft.Transient, fmt.Errorf("jetstream %s: deliveries were missed; waiting for %d records in flight before rewinding", s.cfg.Stream, inFlight))
	}
	s.iter.Stop()
	if err := s.open(ctx); err != nil {
		return graft.NewError(graft.Transient, fmt.Errorf("jetstream %s: rewind after missed deliveries: %w", s.cfg.Stream, err))
	}
	s.mu.Lock()
	s.maxDelivered, s.gap = s.acked, false
	s.mu.Unlock()
	s.log.Warn("jetstream: rewound to the acknowledged position after missed deliveries", "stream", s.cfg.Stream, "from", s.acked+1)
	return nil
}

// Gaps counts the times deliveries were missed (each followed by a
// rewind).
func (s *Source) Gaps() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gaps
}

// keepAlive sends in-progress acks for every delivered, unacknowledged
// message a few times per ack wait, so that the server does not redeliver
// what the engine is still working on.
func (s *Source) keepAlive() {
	defer close(s.done)
	t := time.NewTicker(max(s.cfg.AckWait/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if s.cfg.TrimAcked {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.trim(ctx)
			cancel()
		}
		if s.cfg.NoProgressAcks {
			continue
		}
		s.mu.Lock()
		msgs := append([]jetstream.Msg(nil), s.unacked...)
		s.mu.Unlock()
		for _, m := range msgs {
			if err := m.InProgress(); err != nil {
				s.log.Warn("in-progress ack failed", "err", err)
				break
			}
		}
	}
}

// LostRecords counts the accepted records the stream lost (Contiguous,
// AcceptedFile).
func (s *Source) LostRecords() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lostTotal
}

// Redelivered counts messages the server delivered twice and the source
// dropped.
func (s *Source) Redelivered() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.redelivered
}

// Lag is the number of messages the stream holds for graft that this
// source has not delivered to the engine yet: not yet delivered by the
// server, or delivered to an earlier run and not acknowledged.
func (s *Source) Lag(ctx context.Context) (int64, error) {
	s.mu.Lock()
	cons := s.cons // replaced when the consumer is opened again (open)
	s.mu.Unlock()
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	mine := int64(len(s.unacked))
	s.mu.Unlock()
	return int64(info.NumPending) + max(int64(info.NumAckPending)-mine, 0), nil
}

// Close implements graft.Source; a second call does nothing.
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.mu.Lock()
		iter := s.iter
		s.mu.Unlock()
		iter.Stop()
	})
	return nil
}

// Publisher writes records into the stream and waits for the server to
// have stored them.
type Publisher struct {
	js      jetstream.JetStream
	subject string
	max     int64 // the server's maximum message size
	mark    *acceptedMark
}

// headerRoom is what a message's headers take besides the key: the
// protocol line and the header name.
const headerRoom = 64 << 10

// Fits reports why a record cannot be stored in the stream: it is larger
// than the server's maximum message size. Such a record can never be
// stored, so it is refused as invalid (dead-lettered), not retried.
func (p *Publisher) Fits(value []byte, key string) error {
	if size := int64(len(value) + len(key) + 64); size > p.max {
		return fmt.Errorf("record of %d bytes: over the stream's maximum message size of %d bytes (NATS max_payload)", len(value), p.max)
	}
	return nil
}

// NewPublisher returns a publisher on cfg's stream, creating it if absent.
// With an AcceptedFile, open the Source first: it compares the file with
// the stream, and the publisher's first publish overwrites it.
func NewPublisher(ctx context.Context, nc *nats.Conn, cfg Config) (*Publisher, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if _, err := EnsureStream(ctx, js, cfg); err != nil {
		return nil, err
	}
	p := &Publisher{js: js, subject: cfg.Subject, max: nc.MaxPayload()}
	if cfg.AcceptedFile != "" {
		if p.mark, err = openAcceptedMark(cfg.AcceptedFile); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Close releases the record of accepted sequences.
func (p *Publisher) Close() error {
	if p.mark == nil {
		return nil
	}
	return p.mark.close()
}

// full tells a refusal for the stream's bound from other publish errors.
func full(err error) error {
	if err != nil && strings.Contains(err.Error(), "maximum bytes exceeded") {
		return fmt.Errorf("%w (%v)", ErrStreamFull, err)
	}
	return err
}

// Publish stores the records and returns their stream sequences once every
// one is acknowledged by the server.
func (p *Publisher) Publish(ctx context.Context, values [][]byte, keys []string) ([]graft.Position, error) {
	futures := make([]jetstream.PubAckFuture, len(values))
	for i, v := range values {
		msg := &nats.Msg{Subject: p.subject, Data: v}
		if keys != nil && keys[i] != "" {
			msg.Header = nats.Header{KeyHeader: []string{keys[i]}}
		}
		f, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			return nil, fmt.Errorf("publish: %w", full(err))
		}
		futures[i] = f
	}
	seqs := make([]graft.Position, len(values))
	var high uint64
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			seqs[i] = graft.Position{Partition: ack.Stream, Offset: int64(ack.Sequence)}
			high = max(high, ack.Sequence)
		case err := <-f.Err():
			return nil, fmt.Errorf("publish: %w", full(err))
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if p.mark != nil {
		if err := p.mark.advance(high); err != nil {
			return nil, err
		}
	}
	return seqs, nil
}

// Collectors returns the source's metrics (docs/operations.md).
func (s *Source) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "graft", Name: "jetstream_delivery_gaps_total",
			Help: "Times deliveries were missed (a slow client dropped them) and the consumer was rewound to its acknowledged position."},
			func() float64 { return float64(s.Gaps()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "graft", Name: "jetstream_redelivered_dropped_total",
			Help: "Messages the server delivered again while they were in the pipeline, dropped by sequence."},
			func() float64 { return float64(s.Redelivered()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "graft", Name: "jetstream_records_lost_total",
			Help: "Accepted records the stream lost (a damaged file: sequences skipped or cut off), each range dead-lettered with class lost."},
			func() float64 { return float64(s.LostRecords()) }),
	}
}

// VersionOrder implements graft.Versioner: a record's version is its
// sequence number in the stream, the order the stream stored it in (for
// HTTP ingest, the order requests were accepted).
func (s *Source) VersionOrder() string {
	return "stream sequence: the order the stream stored the records"
}
