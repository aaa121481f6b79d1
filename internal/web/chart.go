package web

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// chartView is the attacks-over-time bar chart, laid out for SVG.
type chartView struct {
	Width, Height int
	Bars          []chartBar
	Max           int
	Ticks         []chartTick
	Empty         bool
	Left, BaseY   float64 // where the axis is
	TopY, TickY   float64 // the maximum's label, the time labels
}

type chartBar struct {
	X, W                   float64
	BlockedY, BlockedH     float64
	MonitoredY, MonitoredH float64
	Title                  string
}

type chartTick struct {
	X     float64
	Label string
}

const (
	chartW, chartH = 720, 180
	chartTop       = 10
	chartBottom    = 22 // room for the time labels
	chartLeft      = 36 // room for the counts
)

func layoutChart(ov Overview) chartView {
	c := chartView{Width: chartW, Height: chartH, Left: chartLeft, BaseY: chartH - chartBottom, TopY: chartTop + 6, TickY: chartH - 6}
	for _, b := range ov.Buckets {
		c.Max = max(c.Max, b.Blocked+b.Monitored)
	}
	c.Empty = c.Max == 0
	scaleMax := max(c.Max, 1)
	plotH := float64(chartH - chartTop - chartBottom)
	n := len(ov.Buckets)
	if n == 0 {
		return c
	}
	slot := float64(chartW-chartLeft) / float64(n)
	for i, b := range ov.Buckets {
		x := chartLeft + float64(i)*slot
		bh := plotH * float64(b.Blocked) / float64(scaleMax)
		mh := plotH * float64(b.Monitored) / float64(scaleMax)
		base := float64(chartTop) + plotH
		c.Bars = append(c.Bars, chartBar{
			X: x + 1, W: max(slot-2, 1),
			BlockedY: base - bh, BlockedH: bh,
			MonitoredY: base - bh - mh, MonitoredH: mh,
			Title: fmt.Sprintf("%s–%s: %d blocked, %d monitored", b.Start.UTC().Format("15:04"), b.End.UTC().Format("15:04"), b.Blocked, b.Monitored),
		})
		if i%max(1, n/6) == 0 {
			format := "15:04"
			if ov.Until.Sub(ov.Since) > 48*time.Hour {
				format = "Jan 2"
			}
			c.Ticks = append(c.Ticks, chartTick{X: x, Label: b.Start.UTC().Format(format)})
		}
	}
	return c
}

// barsView is a horizontal bar list (by kind, by service, top actors).
type barsView struct {
	Rows []barRow
}

type barRow struct {
	Key string
	N   int
	W   float64 // of 100
}

func layoutBars(cs []Count) barsView {
	var v barsView
	top := 1
	for _, c := range cs {
		top = max(top, c.N)
	}
	for _, c := range cs {
		v.Rows = append(v.Rows, barRow{Key: c.Key, N: c.N, W: max(1, 100*float64(c.N)/float64(top))})
	}
	return v
}

// graphView is the service graph laid out in columns: the Internet, the
// edge, then each service one column right of its first caller.
type graphView struct {
	Width, Height int
	Nodes         []graphNodeView
	Edges         []graphEdgeView
	Hidden        int // nodes left out of the drawing (see maxGraphNodes)
}

type graphNodeView struct {
	GraphNode
	X, Y, W, H float64
	TX, TY, MY float64 // name and meta lines
	R          float64 // corner radius
	Class      string
	Label      string
	Meta       string
	Link       bool
}

type graphEdgeView struct {
	GraphEdge
	D     string // SVG path
	Class string
	Title string
}

const (
	maxGraphNodes  = 60
	nodeW, nodeH   = 200, 40
	colGap, rowGap = 70, 16
	graphPad       = 12
)

func layoutGraph(g Graph) graphView {
	// Keep the nodes that matter most when there are many: attacked,
	// exposed, edge, then by name.
	nodes := slices.Clone(g.Nodes)
	var v graphView
	if len(nodes) > maxGraphNodes {
		slices.SortStableFunc(nodes, func(a, b GraphNode) int {
			score := func(n GraphNode) int {
				s := n.Attacks * 4
				if n.Edge {
					s += 1 << 30
				}
				if n.Exposed {
					s += 1 << 20
				}
				return s
			}
			return score(b) - score(a)
		})
		v.Hidden = len(nodes) - maxGraphNodes
		nodes = nodes[:maxGraphNodes]
	}
	keep := map[string]bool{Internet: true}
	for _, n := range nodes {
		keep[n.Name] = true
	}
	callees := map[string][]string{}
	for _, e := range g.Edges {
		if keep[e.From] && keep[e.To] {
			callees[e.From] = append(callees[e.From], e.To)
		}
	}
	// Columns by breadth-first distance from the Internet.
	col := map[string]int{Internet: 0}
	queue := []string{Internet}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, c := range callees[n] {
			if _, ok := col[c]; !ok {
				col[c] = col[n] + 1
				queue = append(queue, c)
			}
		}
	}
	last := 1
	for _, c := range col {
		last = max(last, c)
	}
	unreached := last + 1
	columns := map[int][]GraphNode{0: {{Name: Internet}}}
	for _, n := range nodes {
		c, ok := col[n.Name]
		if !ok {
			c = unreached
		}
		columns[c] = append(columns[c], n)
	}
	ncols, rows := 0, 0
	for c, list := range columns {
		ncols = max(ncols, c+1)
		rows = max(rows, len(list))
	}
	pos := map[string]*graphNodeView{}
	for c := 0; c < ncols; c++ {
		for r, n := range columns[c] {
			nv := graphNodeView{GraphNode: n, W: nodeW, H: nodeH,
				X: graphPad + float64(c*(nodeW+colGap)), Y: graphPad + float64(r*(nodeH+rowGap))}
			nv.TX, nv.TY, nv.MY, nv.R, nv.Link = nv.X+10, nv.Y+17, nv.Y+32, 6, true
			nv.Label = truncate(n.Name, 24)
			var meta []string
			if n.Instances > 0 {
				meta = append(meta, fmt.Sprintf("%d inst.", n.Instances))
			}
			if n.Exposed {
				meta = append(meta, "exposed")
			}
			if n.Attacks > 0 {
				meta = append(meta, fmt.Sprintf("%d attacks", n.Attacks))
			}
			nv.Meta = strings.Join(meta, " · ")
			classes := []string{"node"}
			switch {
			case n.Name == Internet && c == 0:
				classes = append(classes, "internet")
				nv.Label, nv.Meta, nv.R, nv.Link = "Internet", "external clients", 20, false
			case n.Edge:
				classes = append(classes, "edge")
			}
			if n.Attacks > 0 {
				classes = append(classes, "attacked")
			}
			if n.Revoked {
				classes = append(classes, "revoked")
			}
			nv.Class = strings.Join(classes, " ")
			v.Nodes = append(v.Nodes, nv)
		}
	}
	for i := range v.Nodes {
		pos[v.Nodes[i].Name] = &v.Nodes[i]
	}
	for _, e := range g.Edges {
		a, b := pos[e.From], pos[e.To]
		if a == nil || b == nil {
			continue
		}
		x1, y1 := a.X+a.W, a.Y+a.H/2
		x2, y2 := b.X, b.Y+b.H/2
		if b.X <= a.X { // a call back to the left or within a column
			x2 = b.X + b.W/2
			y2 = b.Y
			if b.Y < a.Y {
				y2 = b.Y + b.H
			}
		}
		mid := (x1 + x2) / 2
		ev := graphEdgeView{GraphEdge: e, D: fmt.Sprintf("M%.1f %.1f C%.1f %.1f %.1f %.1f %.1f %.1f", x1, y1, mid, y1, mid, y2, x2, y2)}
		switch {
		case e.Allowed && e.Seen:
			ev.Class, ev.Title = "edge-line allowed seen", e.From+" → "+e.To+": allowed by the policy, seen"
		case e.Allowed:
			ev.Class, ev.Title = "edge-line allowed", e.From+" → "+e.To+": allowed by the policy"
		default:
			ev.Class, ev.Title = "edge-line unexpected", e.From+" → "+e.To+": seen, not in the policy"
		}
		v.Edges = append(v.Edges, ev)
	}
	v.Width = graphPad*2 + ncols*(nodeW+colGap) - colGap
	v.Height = graphPad*2 + max(1, rows)*(nodeH+rowGap) - rowGap
	return v
}
