package rooms

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrLinksNeedEmbedded: links are leaf nodes of the embedded server; with
// Config.URL they are the NATS deployment's business.
var ErrLinksNeedEmbedded = errors.New("links need the embedded NATS server (serve without --nats)")

// StartLinks starts l on the bus's embedded server once it is ready (l's
// ConfigureServer must have been the bus's Config.ConfigureServer): rooms
// then span the linked sites, and each time a link comes up the keys with
// sessions here are announced online again, so that direct messages
// waiting for them on the other side are delivered, and those waiting here
// are tried again (their recipient may be online on the other side, whose
// own announcement may have crossed before this side could answer).
func (b *Bus) StartLinks(ctx context.Context, l *Links) error {
	if !l.Enabled() {
		return nil
	}
	if err := b.wait(ctx); err != nil {
		return err
	}
	if b.ns == nil {
		return ErrLinksNeedEmbedded
	}
	return l.Start(b.ns, b.nc, LinkHooks{
		AddSite: func(site string) error {
			ctx, cancel := context.WithTimeout(context.Background(), linkOpTimeout)
			defer cancel()
			return b.AddSite(ctx, site)
		},
		Rooms: b.roomNames,
		EnsureRoom: func(room string) error {
			r, err := RoomName(room)
			if err != nil || r != room {
				return &NameError{Name: room}
			}
			ctx, cancel := context.WithTimeout(context.Background(), linkOpTimeout)
			defer cancel()
			return b.ensureRoom(ctx, r)
		},
		Online: func() {
			if err := b.AnnounceOnline(); err != nil {
				b.log.Warn().Err(err).Msg("link: could not announce the keys online here to the linked site")
			}
			b.retryWaiting()
		},
	})
}

// linkOpTimeout bounds one stream operation the links ask of the bus.
const linkOpTimeout = 10 * time.Second

// roomNames lists the rooms with a stream here, those of earlier runs
// included.
func (b *Bus) roomNames() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), linkOpTimeout)
	defer cancel()
	var out []string
	names := b.js.StreamNames(ctx)
	for n := range names.Name() {
		if r, ok := strings.CutPrefix(n, roomStreamPrefix); ok {
			out = append(out, r)
		}
	}
	return out, names.Err()
}

// retryWaiting tries again to deliver every direct message waiting here.
func (b *Bus) retryWaiting() {
	ctx, cancel := context.WithTimeout(context.Background(), linkOpTimeout)
	defer cancel()
	st, err := b.js.Stream(ctx, dmStream)
	if err != nil {
		return
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(dmSubject(b.cfg.Site, "*")))
	if err != nil {
		return
	}
	for subj := range info.State.Subjects {
		key := subj[strings.LastIndexByte(subj, '.')+1:]
		if checkKey(key) == nil {
			go b.retry(key)
		}
	}
}
