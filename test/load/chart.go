package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"strings"
)

// drawChart writes a PNG bar chart of the ratios: one bar per ratio, green when it meets its
// target and red when not, a black line across the bar's slot at the target, and the value
// above each bar. It uses only the standard library (with the small bitmap font below).
func drawChart(path string, ratios []ratio) error {
	const (
		height      = 420
		left, right = 70, 20
		top, bottom = 50, 70
		scale       = 2 // font pixel size
	)
	// Every bar's slot holds its label (at most 10 characters) with some space around.
	width := 800
	for _, r := range ratios {
		width = max(width, left+right+len(ratios)*(textWidth(r.short, scale)+24))
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	fill(img, img.Bounds(), color.RGBA{255, 255, 255, 255})

	maxValue := 1.2
	for _, r := range ratios {
		maxValue = max(maxValue, r.value()*1.1, r.target*1.1)
	}
	plotH := height - top - bottom
	y := func(v float64) int { return top + plotH - int(v/maxValue*float64(plotH)) }

	grey := color.RGBA{210, 210, 210, 255}
	black := color.RGBA{0, 0, 0, 255}
	for v := 0.0; v <= maxValue+1e-9; v += 0.2 {
		fill(img, image.Rect(left, y(v), width-right, y(v)+1), grey)
		text(img, left-8-textWidth(fmt.Sprintf("%.1f", v), scale), y(v)-3*scale, fmt.Sprintf("%.1f", v), scale, black)
	}
	fill(img, image.Rect(left, top, left+1, top+plotH+1), black)
	fill(img, image.Rect(left, top+plotH, width-right, top+plotH+1), black)
	title := "THROUGHPUT / CEILING  (LINE = TARGET)"
	text(img, (width-textWidth(title, scale))/2, 16, title, scale, black)

	if len(ratios) == 0 {
		return writePNG(path, img)
	}
	slot := (width - left - right) / len(ratios)
	barW := slot / 2
	for i, r := range ratios {
		x0 := left + i*slot + (slot-barW)/2
		v := r.value()
		c := color.RGBA{46, 160, 67, 255}
		if v < r.target {
			c = color.RGBA{207, 34, 46, 255}
		}
		fill(img, image.Rect(x0, y(v), x0+barW, top+plotH), c)
		// The target line spans the slot, above the bar.
		fill(img, image.Rect(left+i*slot+8, y(r.target)-1, left+(i+1)*slot-8, y(r.target)+2), black)
		value := fmt.Sprintf("%.2f", v)
		text(img, x0+(barW-textWidth(value, scale))/2, min(y(v), y(r.target))-10*scale, value, scale, black)
		target := fmt.Sprintf(">= %.1f", r.target)
		text(img, left+i*slot+(slot-textWidth(r.short, scale))/2, top+plotH+10, r.short, scale, black)
		text(img, left+i*slot+(slot-textWidth(target, scale))/2, top+plotH+10+10*scale, target, scale, black)
	}
	return writePNG(path, img)
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path) //nolint:gosec // G304: the operator's -chart path
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// textWidth is the width in pixels of s in the bitmap font.
func textWidth(s string, scale int) int { return len(s) * 6 * scale }

// text draws s (upper case, digits and a few signs) with its top-left corner at x, y.
func text(img *image.RGBA, x, y int, s string, scale int, c color.RGBA) {
	for i, ch := range strings.ToUpper(s) {
		g, ok := glyphs[ch]
		if !ok {
			continue
		}
		for row, line := range g {
			for col, px := range line {
				if px == '#' {
					fill(img, image.Rect(x+(i*6+col)*scale, y+row*scale, x+(i*6+col+1)*scale, y+(row+1)*scale), c)
				}
			}
		}
	}
}

// glyphs is a 5x7 bitmap font for the characters the chart uses.
var glyphs = map[rune][7]string{
	'A': {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'B': {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."},
	'C': {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."},
	'D': {"####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."},
	'E': {"#####", "#....", "#....", "####.", "#....", "#....", "#####"},
	'F': {"#####", "#....", "#....", "####.", "#....", "#....", "#...."},
	'G': {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"},
	'H': {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'I': {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'J': {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."},
	'K': {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"},
	'L': {"#....", "#....", "#....", "#....", "#....", "#....", "#####"},
	'M': {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"},
	'N': {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"},
	'O': {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'P': {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."},
	'Q': {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"},
	'R': {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"},
	'S': {".####", "#....", "#....", ".###.", "....#", "....#", "####."},
	'T': {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."},
	'U': {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'V': {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."},
	'W': {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."},
	'X': {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"},
	'Y': {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."},
	'Z': {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"},
	'0': {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."},
	'1': {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'2': {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"},
	'3': {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."},
	'4': {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."},
	'5': {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."},
	'6': {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."},
	'7': {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."},
	'8': {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."},
	'9': {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."},
	'.': {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."},
	'/': {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."},
	'-': {".....", ".....", ".....", "#####", ".....", ".....", "....."},
	'=': {".....", ".....", "#####", ".....", "#####", ".....", "....."},
	'>': {".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."},
	'(': {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."},
	')': {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."},
	' ': {".....", ".....", ".....", ".....", ".....", ".....", "....."},
}
