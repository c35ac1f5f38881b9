package mediahttp

import (
	"encoding/json"
	"errors"
	"net/url"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

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

// changeJSON is the body of PATCH /images/{id}: each field optional, and of its type when
// present. The fields are raw so that absent and null can be told apart: as *string they
// read {"visibility": null} as absent, a 200 that changed nothing, where null for a string
// field is the wrong type (400) everywhere else (PATCH /users/me's "name" among them).
type changeJSON struct {
	Visibility  json.RawMessage `json:"visibility"`
	Description json.RawMessage `json:"description"`
	Tags        json.RawMessage `json:"tags"`
}

// refuseNullStrings makes null a wrong type for a string inside the tags array, as the
// kernel's decoder does for every string field.
var refuseNullStrings = jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, _ *string) error {
	if dec.PeekKind() == 'n' {
		return errors.New("null is not a string")
	}
	return errors.ErrUnsupported // decoded as usual
}))

// draft is the change the body asks for, or the detail of a 400 when a field present is not
// of its type (null included).
func (b changeJSON) draft() (image.DetailsDraft, string) {
	var d image.DetailsDraft
	var problem string
	if d.Visibility, problem = httpapi.OptionalString("visibility", b.Visibility); problem != "" {
		return d, problem
	}
	if d.Description, problem = httpapi.OptionalString("description", b.Description); problem != "" {
		return d, problem
	}
	if b.Tags != nil {
		var tags []string
		if string(b.Tags) == "null" || jsonv2.Unmarshal(b.Tags, &tags, refuseNullStrings) != nil || tags == nil {
			return d, `Field "tags" must be an array of strings.`
		}
		d.Tags = &tags
	}
	return d, ""
}

// bulkDeleteJSON is the body of POST /images/delete.
type bulkDeleteJSON struct {
	IDs *[]string `json:"ids"`
}
