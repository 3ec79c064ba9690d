package catalog

import "strings"

// arrayElems splits PostgreSQL's text of a one-dimensional array into its
// elements' text, nil for NULL.
func arrayElems(pg string) []*string {
	s := strings.TrimSpace(pg)
	if i := strings.Index(s, "="); i >= 0 && strings.HasPrefix(s, "[") {
		s = s[i+1:] // explicit bounds: [0:1]={…}
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	var out []*string
	for len(s) > 0 {
		var elem string
		quoted := false
		if s[0] == '"' {
			quoted = true
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			elem, s = b.String(), s[min(i+1, len(s)):]
		} else {
			i := strings.IndexByte(s, ',')
			if i < 0 {
				i = len(s)
			}
			elem, s = strings.TrimSpace(s[:i]), s[i:]
		}
		s = strings.TrimPrefix(s, ",")
		if !quoted && strings.EqualFold(elem, "NULL") {
			out = append(out, nil)
		} else {
			out = append(out, &elem)
		}
	}
	return out
}
