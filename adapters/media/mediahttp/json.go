package mediahttp

import (
	"net/url"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain/media/image"
)

// imageJSON is an image as clients see it.
type imageJSON struct {
	ID           string   `json:"id"`
	Filename     string   `json:"filename"`
	ContentType  string   `json:"content_type"`
	Bytes        int64    `json:"bytes"`
	Width        int      `json:"width"`
	Height       int      `json:"height"`
	SHA256       string   `json:"sha256"`
	Visibility   string   `json:"visibility"`
	Description  string   `json:"description"`
	Tags         []string `json:"tags"`
	CreatedAt    string   `json:"created_at"`
	ContentURL   string   `json:"content_url"`
	ThumbnailURL string   `json:"thumbnail_url"`
}

func imageOf(img *image.Image) imageJSON {
	c := img.Content()
	d := img.Details()
	base := "/api/v1/images/" + url.PathEscape(string(img.ID()))
	return imageJSON{
		ID: string(img.ID()), Filename: img.Filename(), ContentType: c.Format.ContentType(), Bytes: c.Bytes,
		Width: c.Width, Height: c.Height, SHA256: img.SHA256Hex(), Visibility: string(d.Visibility),
		Description: d.Description, Tags: d.Tags, CreatedAt: httpapi.Timestamp(img.CreatedAt()),
		ContentURL: base + "/content", ThumbnailURL: base + "/thumbnail",
	}
}

func imagesOf(imgs []*image.Image) []imageJSON {
	out := make([]imageJSON, len(imgs))
	for i, img := range imgs {
		out[i] = imageOf(img)
	}
	return out
}

// imagesJSON is the answer to an upload.
type imagesJSON struct {
	Images []imageJSON `json:"images"`
}

// pageJSON is a page of images.
type pageJSON struct {
	Images     []imageJSON `json:"images"`
	NextCursor *string     `json:"next_cursor"`
}

// changeJSON is the body of PATCH /images/{id}: each field optional.
type changeJSON struct {
	Visibility  *string   `json:"visibility"`
	Description *string   `json:"description"`
	Tags        *[]string `json:"tags"`
}

// bulkDeleteJSON is the body of POST /images/delete.
type bulkDeleteJSON struct {
	IDs *[]string `json:"ids"`
}
