package transport

import (
	"fmt"
	"io"
	"sync"
)

// flushSize is how many buffered bytes make Buffer write them out.
const flushSize = 64 << 10

// Writer writes frames to a stream. Each frame's header and payload go out in
// one Write call, and frames from concurrent callers never interleave.
//
// WriteFrame writes at once. Buffer collects frames and writes them when
// 64 KiB have gathered or Flush is called, so a sender streaming many small
// messages makes one system call per batch rather than per message.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	max int
	buf []byte
	err error // sticky
}

// NewWriter returns a Writer to w that refuses payloads longer than max bytes
// (DefaultMaxPayload if max <= 0; at most MaxPayloadLimit).
func NewWriter(w io.Writer, max int) *Writer {
	if max <= 0 {
		max = DefaultMaxPayload
	}
	if max > MaxPayloadLimit {
		max = MaxPayloadLimit
	}
	return &Writer{w: w, max: max}
}

// WriteFrame writes any buffered frames and then the frame for p, in one
// Write call.
func (w *Writer) WriteFrame(p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.append(p); err != nil {
		return err
	}
	return w.flush()
}

// Buffer adds the frame for p to the buffer, writing the buffer out when it
// is full. Call Flush to send what remains.
func (w *Writer) Buffer(p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.append(p); err != nil {
		return err
	}
	if len(w.buf) >= flushSize {
		return w.flush()
	}
	return nil
}

// Flush writes the buffered frames.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flush()
}

// Buffered reports how many bytes wait for Flush.
func (w *Writer) Buffered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.buf)
}

func (w *Writer) append(p []byte) error {
	if w.err != nil {
		return w.err
	}
	if len(p) > w.max {
		return &ProtocolError{Err: ErrFrameTooLarge, Length: len(p), Max: w.max}
	}
	w.buf = AppendFrame(w.buf, p)
	return nil
}

func (w *Writer) flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.w.Write(w.buf)
	if err != nil {
		w.err = fmt.Errorf("transport: write: %w", err)
		return w.err
	}
	if cap(w.buf) > 4*flushSize {
		w.buf = nil // do not keep a buffer grown for one huge frame
	} else {
		w.buf = w.buf[:0]
	}
	return nil
}
