package httpapi

import "github.com/acme/postsvc/domain/posts/post"

// The internal tests decode a post's body as the posts module does, within its limit: the
// largest valid post however it is escaped (six bytes of JSON per byte of text at worst).
type newPostRequest struct {
	Text string `json:"text"`
}

const postBodyLimit int64 = 6*post.MaxTextBytes + 4096
