package testenv

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Faults says which faults a FaultProxy injects. The zero value injects
// none. Rates are probabilities in [0, 1].
//
// One draw per request picks at most one of InternalError, SlowDown, Reset
// and Drop (so their sum should not exceed 1); a second draw decides Delay.
// Draws come from a generator seeded with Seed, so a sequence of requests
// sent one at a time meets the same faults on every run. Concurrent
// requests draw in arrival order, which is not repeatable.
type Faults struct {
	// InternalError answers 500 InternalError without forwarding.
	InternalError float64
	// SlowDown answers 503 SlowDown without forwarding.
	SlowDown float64
	// Reset resets the client's connection without forwarding.
	Reset float64
	// Drop forwards the request, reads the whole response and then resets
	// the client's connection: the server did the work but the client sees
	// a failure. This is the fault exactly-once code must survive.
	Drop float64

	// Delay adds Latency plus a uniform random part of Jitter before a
	// request is forwarded (or failed).
	Delay   float64
	Latency time.Duration
	Jitter  time.Duration

	// Methods restricts faults (stalls included) to requests with one of
	// these methods, e.g. PUT and POST; empty means all.
	Methods []string
	// Keys restricts faults (stalls included) to requests whose URL path,
	// /bucket/key with path-style addressing, contains one of these
	// substrings; empty means all.
	Keys []string

	// Limit caps the failing faults (InternalError, SlowDown, Reset, Drop)
	// injected after SetFaults; 0 means no cap. Limit 1 with Drop 1 drops
	// exactly the next matching request.
	Limit int
	// Seed seeds the generator when SetFaults is called.
	Seed uint64

	// StallAfter, when above 0, lets that many matching requests through
	// after SetFaults and then stalls (see Stall) every further one: a
	// fixed point to stop at, however fast the client is.
	StallAfter int
}

// Counts reports what a FaultProxy has seen and done.
type Counts struct {
	Requests int // requests received, faulty or not

	// Faults injected, by kind.
	InternalError int
	SlowDown      int
	Reset         int
	Drop          int
	Delay         int
	Stall         int // requests held by Stall
}

// FaultProxy is an HTTP reverse proxy on 127.0.0.1 that sits between an S3
// client and an S3 server and injects faults, like pebble's errorfs does
// for a file system. It forwards requests byte for byte, streaming bodies
// and keeping every header, Host included, so SigV4 signatures made for the
// proxy's address still verify at the server. It is safe for concurrent
// use.
type FaultProxy struct {
	ln     net.Listener
	srv    *http.Server
	rp     *httputil.ReverseProxy
	tr     *http.Transport
	ctx    context.Context // canceled by Close; ends held and in-flight requests
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	handlers sync.WaitGroup // running ServeHTTP calls
	faults   Faults
	rng      *rand.Rand
	injected int // failing faults since SetFaults, for Limit
	matched  int // matching requests since SetFaults, for StallAfter
	counts   Counts
	stall    chan struct{} // non-nil while stalling; Release closes it
}

// errDrop makes the reverse proxy's ErrorHandler reset the connection after
// the response has been read from the server.
var errDrop = errors.New("fault proxy: drop response")

// dropKey marks, in a request's context, a request whose response to drop.
type dropKey struct{}

// NewFaultProxy starts a FaultProxy in front of target for tb and closes it
// when tb ends. It fails tb if the proxy cannot start.
func NewFaultProxy(tb testing.TB, target string) *FaultProxy {
	tb.Helper()
	p, err := StartFaultProxy(target)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	return p
}

// StartFaultProxy starts a proxy in front of target, an http:// URL such as
// S3Server.Endpoint, on a free port of 127.0.0.1. It injects no faults
// until SetFaults or Stall. The caller calls Close.
func StartFaultProxy(target string) (*FaultProxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("fault proxy: target %q: want http://host:port", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy: %w", err)
	}
	p := &FaultProxy{
		ln:  ln,
		rng: rand.New(rand.NewPCG(0, 0)),
		tr: &http.Transport{
			Proxy:                 nil, // never via HTTP_PROXY
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       30 * time.Second,
			ExpectContinueTimeout: time.Second,
			// Pass Accept-Encoding and the body through untouched.
			DisableCompression: true,
		},
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.rp = &httputil.ReverseProxy{
		// Only scheme and host change. Out.Host keeps the Host header
		// the client sent and signed; path and query stay as sent, since
		// the signature covers their exact encoding.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = u.Scheme
			pr.Out.URL.Host = u.Host
			pr.Out.Host = pr.In.Host
		},
		Transport:      p.tr,
		ModifyResponse: dropResponse,
		ErrorHandler:   p.proxyError,
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln) // returns ErrServerClosed on Close
	return p, nil
}

// Endpoint returns the proxy's URL, http://127.0.0.1:PORT.
func (p *FaultProxy) Endpoint() string {
	return "http://127.0.0.1:" + strconv.Itoa(p.ln.Addr().(*net.TCPAddr).Port)
}

// Env returns s.Env with AWS_ENDPOINT_URL_S3 pointing at the proxy.
func (p *FaultProxy) Env(s *S3Server) []string {
	const key = "AWS_ENDPOINT_URL_S3="
	var env []string
	for _, kv := range s.Env() {
		if !strings.HasPrefix(kv, key) {
			env = append(env, kv)
		}
	}
	return append(env, key+p.Endpoint())
}

// SetFaults replaces the faults to inject, reseeds the generator with
// f.Seed and restarts the count for f.Limit. Requests already past the
// draw keep their fault.
func (p *FaultProxy) SetFaults(f Faults) {
	f.Methods = append([]string(nil), f.Methods...)
	f.Keys = append([]string(nil), f.Keys...)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
	p.rng = rand.New(rand.NewPCG(f.Seed, f.Seed))
	p.injected, p.matched = 0, 0
}

// Stall holds every matching request (see Faults.Methods and Faults.Keys)
// that arrives from now on, before it is forwarded, until Release, Close,
// or the client gives up.
func (p *FaultProxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stall == nil {
		p.stall = make(chan struct{})
	}
}

// Release lets the requests held by Stall (or StallAfter) go on and stops
// stalling.
func (p *FaultProxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults.StallAfter = 0
	if p.stall != nil {
		close(p.stall)
		p.stall = nil
	}
}

// Counts returns the requests seen and the faults injected so far.
func (p *FaultProxy) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts
}

// Close stops the proxy: it closes the listener and all connections, ends
// held requests and waits for the handlers to return. Calling it again
// does nothing.
func (p *FaultProxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()

	p.cancel()
	err := p.srv.Close()
	p.handlers.Wait()
	p.tr.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("fault proxy: close: %w", err)
	}
	return nil
}

// fault is what happens to one request.
type fault int

const (
	none fault = iota
	internalError
	slowDown
	reset
	drop
)

// plan is the decision for one request, made when it arrives.
type plan struct {
	fault fault
	delay time.Duration
	stall chan struct{} // wait for it to close; nil: no stall
	id    int           // request number, for x-amz-request-id
}

// decide counts r and draws its faults.
func (p *FaultProxy) decide(r *http.Request) plan {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts.Requests++
	pl := plan{id: p.counts.Requests}
	f := &p.faults
	if !matches(f, r) {
		return pl
	}
	p.matched++
	if f.StallAfter > 0 && p.matched > f.StallAfter && p.stall == nil {
		p.stall = make(chan struct{})
	}
	if p.stall != nil {
		pl.stall = p.stall
		p.counts.Stall++
	}
	// Always draw twice, so one kind's rate does not shift the other's
	// sequence.
	u, v := p.rng.Float64(), p.rng.Float64()
	if f.Limit == 0 || p.injected < f.Limit {
		switch {
		case u < f.InternalError:
			pl.fault, p.counts.InternalError = internalError, p.counts.InternalError+1
		case u < f.InternalError+f.SlowDown:
			pl.fault, p.counts.SlowDown = slowDown, p.counts.SlowDown+1
		case u < f.InternalError+f.SlowDown+f.Reset:
			pl.fault, p.counts.Reset = reset, p.counts.Reset+1
		case u < f.InternalError+f.SlowDown+f.Reset+f.Drop:
			pl.fault, p.counts.Drop = drop, p.counts.Drop+1
		}
		if pl.fault != none {
			p.injected++
		}
	}
	if v < f.Delay && f.Latency+f.Jitter > 0 {
		pl.delay = f.Latency
		if f.Jitter > 0 {
			pl.delay += time.Duration(p.rng.Int64N(int64(f.Jitter)))
		}
		p.counts.Delay++
	}
	return pl
}

// matches reports whether f's method and key filters select r.
func matches(f *Faults, r *http.Request) bool {
	if len(f.Methods) > 0 && !containsFunc(f.Methods, func(m string) bool { return strings.EqualFold(m, r.Method) }) {
		return false
	}
	if len(f.Keys) > 0 && !containsFunc(f.Keys, func(k string) bool { return strings.Contains(r.URL.Path, k) }) {
		return false
	}
	return true
}

func containsFunc(s []string, f func(string) bool) bool {
	for _, x := range s {
		if f(x) {
			return true
		}
	}
	return false
}

// ServeHTTP applies the faults drawn for r and forwards it unless a fault
// answers instead. It is the proxy's handler; tests do not call it.
func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		resetConn(w)
		return
	}
	p.handlers.Add(1)
	p.mu.Unlock()
	defer p.handlers.Done()

	// Close ends the request, even one whose client is still waiting.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(p.ctx, cancel)()

	pl := p.decide(r)
	if pl.stall != nil {
		select {
		case <-pl.stall:
		case <-ctx.Done():
			resetConn(w)
			return
		}
	}
	if pl.delay > 0 {
		t := time.NewTimer(pl.delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			resetConn(w)
			return
		}
	}
	switch pl.fault {
	case internalError:
		writeS3Error(w, r, http.StatusInternalServerError, "InternalError",
			"We encountered an internal error. Please try again.", pl.id)
	case slowDown:
		writeS3Error(w, r, http.StatusServiceUnavailable, "SlowDown",
			"Please reduce your request rate.", pl.id)
	case reset:
		resetConn(w)
	case drop:
		p.rp.ServeHTTP(w, r.WithContext(context.WithValue(ctx, dropKey{}, true)))
	default:
		p.rp.ServeHTTP(w, r.WithContext(ctx))
	}
}

// dropResponse is the reverse proxy's ModifyResponse: for a request marked
// to drop it reads the whole response, so the server has finished (a
// CompleteMultipartUpload may stream its result), and fails with errDrop.
func dropResponse(resp *http.Response) error {
	if resp.Request.Context().Value(dropKey{}) == nil {
		return nil
	}
	_, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("fault proxy: read response to drop: %w", err)
	}
	return errDrop
}

// proxyError is the reverse proxy's ErrorHandler: it resets the connection
// for a dropped response and answers 502 to other failures.
func (p *FaultProxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errDrop) || r.Context().Err() != nil {
		resetConn(w)
		return
	}
	writeS3Error(w, r, http.StatusBadGateway, "BadGateway", "fault proxy: "+err.Error(), 0)
}

// resetConn takes over w's connection and closes it with a TCP RST, so the
// client reads "connection reset by peer", as when a load balancer or NAT
// drops a connection.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (e.g. HTTP/2): the best left is an abort.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) // close sends RST, not FIN
	}
	conn.Close()
}

// s3Error is the XML body S3 sends with an error status.
type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Resource  string
	RequestID string `xml:"RequestId"`
}

// writeS3Error answers r with status and an S3 error document, as S3 does.
func writeS3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string, id int) {
	// Read the body first, unless the client waits for 100 Continue:
	// answering while the client is still sending can make it see a reset
	// instead of the answer. With Expect the client skips the body, as with
	// a real S3 error.
	if !strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		io.Copy(io.Discard, r.Body)
	}
	reqID := fmt.Sprintf("faultproxy-%d", id)
	body, err := xml.Marshal(s3Error{Code: code, Message: msg, Resource: r.URL.Path, RequestID: reqID})
	if err != nil {
		panic(err) // a fixed struct of strings always marshals
	}
	body = append([]byte(xml.Header), body...)
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Amz-Request-Id", reqID)
	w.WriteHeader(status)
	w.Write(body)
}
