package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// tracedStorage is the engine's view of Config.Storage: every operation is
// timed into smart.store.operation.duration and noted as an event on the
// span in its context (by operation, duration and, for a failure, the
// error's type; never the key, which names a session, a state or a
// handle). A Storage that is a Taker is seen through tracedTaker, which
// keeps the capability; a new optional Storage interface must be forwarded
// here too.
type tracedStorage struct {
	st  Storage
	tel *telemetry
}

// tracedTaker is a tracedStorage over a Taker.
type tracedTaker struct {
	tracedStorage
	taker Taker
}

// instrumentStorage returns st seen through the engine's telemetry.
func instrumentStorage(st Storage, tel *telemetry) Storage {
	ts := tracedStorage{st: st, tel: tel}
	if t, ok := st.(Taker); ok {
		return &tracedTaker{tracedStorage: ts, taker: t}
	}
	return &ts
}

func (s *tracedStorage) Get(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	b, err := s.st.Get(ctx, key)
	s.tel.stored(ctx, storeGet, start, err)
	return b, err
}

func (s *tracedStorage) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	start := time.Now()
	err := s.st.Set(ctx, key, value, ttl)
	s.tel.stored(ctx, storeSet, start, err)
	return err
}

func (s *tracedStorage) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := s.st.Delete(ctx, key)
	s.tel.stored(ctx, storeDelete, start, err)
	return err
}

func (s *tracedTaker) Take(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	b, err := s.taker.Take(ctx, key)
	s.tel.stored(ctx, storeTake, start, err)
	return b, err
}

// stored records one Storage operation. ErrNotFound is an answer, not a
// failure.
func (t *telemetry) stored(ctx context.Context, op int, start time.Time, err error) {
	failed := err != nil && !errors.Is(err, ErrNotFound)
	span := trace.SpanFromContext(ctx)
	record := t.storeDuration.Enabled(ctx)
	if !record && !span.IsRecording() {
		return
	}
	d := time.Since(start)
	var errType string
	if failed {
		errType = fmt.Sprintf("%T", err)
	}
	if record {
		opt := t.storeOK[op]
		if failed {
			opt = metric.WithAttributes(attrStoreOp.String(storeOpNames[op]), semconv.ErrorTypeKey.String(errType))
		}
		t.storeDuration.Record(ctx, d.Seconds(), opt)
	}
	if span.IsRecording() {
		attrs := []attribute.KeyValue{attrStoreOp.String(storeOpNames[op]), attribute.Float64("smart.store.duration", d.Seconds())}
		if failed {
			attrs = append(attrs, semconv.ErrorTypeKey.String(errType))
		}
		span.AddEvent("smart.store."+storeOpNames[op], trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	}
}
