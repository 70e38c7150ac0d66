package session

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/lanmsg/lanmsg/transport"
)

// DeliverOptions says how Deliver treats what a one-shot send and a chat
// treat differently. The zero value is send's.
type DeliverOptions struct {
	// Chat makes ctx's end the normal way out (as the end of the input
	// is): Deliver stops reading and leaves, waiting for the server to
	// confirm what was sent. Without it, ctx's end aborts the connection,
	// even in the middle of a send or of the wait for the confirmation,
	// and Deliver returns ctx's error. With Chat, in an extended session,
	// the server ending the session also ends the wait for input: Deliver
	// returns a *ServerLeftError.
	Chat bool
	// Line, when set, sees each message of the input (n counts them from
	// 1) before it is sent, and returns what to send, if anything. It
	// returns io.EOF to end the input; any other error ends the session
	// as a failed send does.
	Line func(n int, msg []byte) (send []byte, ok bool, err error)
	// TooLong, when set, is told of message n of the input, which is over
	// the limit and not sent; the input goes on after it. Without it, such
	// a message stops the input (an *InputError).
	TooLong func(n int)
}

// Report says what Deliver sent.
type Report struct {
	Sent     int   // messages sent (handed to the connection)
	Acked    int64 // of those, how many the server confirmed (extended sessions)
	Extended bool  // whether the session had receipts
}

// InputError: message N of the input was not sent, and neither was anything
// after it. Err says why: it wraps ErrTooLong (the message is over the
// limit, Max), ErrReservedMessage or ErrHelloMessage (a plain session cannot
// carry it), or is the error that ended reading the input. Deliver returns it
// once the messages before N were delivered and confirmed.
type InputError struct {
	N   int
	Max int
	Err error
}

func (e *InputError) Error() string {
	return fmt.Sprintf("session: input message %d: %v", e.N, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

// ServerLeftError: in a chat, the server ended the session while Deliver
// waited for input. Err is why the connection ended (Client.Err).
type ServerLeftError struct{ Err error }

func (e *ServerLeftError) Error() string {
	return fmt.Sprintf("session: the server ended the session: %v", e.Err)
}

func (e *ServerLeftError) Unwrap() error { return e.Err }

// errServerLeft ends the wait for input when the server closes a chat.
var errServerLeft = errors.New("the server closed the session")

// Deliver sends every message from src, flushing whenever src is drained,
// then "!DISCONNECT", and waits for the server's confirmation (Close).
//
// It returns nil once every message was sent and confirmed. A message that
// stops the input (*InputError) ends it early: the messages before it are
// still delivered and confirmed, and the *InputError is returned after that.
// A session the server did not confirm returns the error wrapping
// ErrNotConfirmed; the Report then says how far receipts went. See
// DeliverOptions for ctx's end. Deliver closes the client in every case.
func (c *Client) Deliver(ctx context.Context, src Source, opt DeliverOptions) (Report, error) {
	ictx := ctx // what waiting for input answers to
	if !opt.Chat {
		// A signal also ends a send blocked on a server that does not
		// read, or on its confirmation: cut the connection; the error
		// that follows is reported as the interruption.
		defer context.AfterFunc(ctx, c.Interrupt)()
	} else if c.ext {
		lctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		go func() {
			select {
			case <-c.done:
				cancel(errServerLeft)
			case <-lctx.Done():
			}
		}()
		ictx = lctx
	}
	var stopped error // why the input stopped early
	for n := 1; stopped == nil; n++ {
		msg, err := src.Next(ictx)
		if err == nil && opt.Line != nil {
			var ok bool
			if msg, ok, err = opt.Line(n, msg); err == nil && !ok {
				continue
			}
			if err != nil && !errors.Is(err, io.EOF) {
				_ = c.Abort()
				return c.report(), err
			}
		}
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				return c.leave(nil)
			case ctx.Err() != nil:
				if opt.Chat {
					return c.leave(nil)
				}
				_ = c.Abort()
				return c.report(), ctx.Err()
			case ictx.Err() != nil: // the server ended the chat
				why := c.Err()
				_ = c.Abort()
				return c.report(), &ServerLeftError{Err: why}
			case errors.Is(err, ErrTooLong):
				stopped = c.tooLong(n, opt)
			default: // reading the input failed
				stopped = &InputError{N: n, Err: err}
			}
			continue
		}
		switch err := c.Send(msg); {
		case err == nil:
			if src.Drained() {
				if err := c.Flush(); err != nil {
					_ = c.Abort()
					return c.report(), err
				}
			}
		case errors.Is(err, transport.ErrFrameTooLarge):
			stopped = c.tooLong(n, opt)
		case errors.Is(err, ErrReservedMessage), errors.Is(err, ErrHelloMessage):
			stopped = &InputError{N: n, Err: err}
		default:
			_ = c.Abort()
			return c.report(), err
		}
	}
	return c.leave(stopped)
}

// tooLong reports message n, over the limit, to opt.TooLong and returns nil,
// or, without it, returns the error that stops the input.
func (c *Client) tooLong(n int, opt DeliverOptions) error {
	if opt.TooLong != nil {
		opt.TooLong(n)
		return nil
	}
	return &InputError{N: n, Max: c.cfg.MaxPayload, Err: ErrTooLong}
}

// leave closes the session, confirming what was sent, and returns why the
// input stopped, or, if the server did not confirm, that.
func (c *Client) leave(stopped error) (Report, error) {
	if err := c.Close(); err != nil {
		return c.report(), err
	}
	return c.report(), stopped
}

func (c *Client) report() Report {
	return Report{Sent: c.sent, Acked: c.acked.Load(), Extended: c.ext}
}
