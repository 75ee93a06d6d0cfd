package apptest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Response is what a function's Lambda entry answered: an API Gateway proxy (v1) or
// payload 2.0 (v2) response, with its headers and multi-value headers in one Header
// and a base64 body decoded.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// DecodeResponse decodes raw, the JSON a Lambda entry returned for an API Gateway
// event. An answer without a status code (a function error) is an error that quotes
// its errorMessage.
func DecodeResponse(raw []byte) (Response, error) {
	var ar struct {
		StatusCode        int                 `json:"statusCode"`
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
		Body              string              `json:"body"`
		IsBase64Encoded   bool                `json:"isBase64Encoded"`
		ErrorMessage      string              `json:"errorMessage"`
	}
	if err := json.Unmarshal(raw, &ar); err != nil {
		return Response{}, fmt.Errorf("the response is not JSON: %v: %.300s", err, raw)
	}
	if ar.StatusCode == 0 {
		return Response{}, fmt.Errorf("not an API Gateway response (errorMessage %q): %.300s", ar.ErrorMessage, raw)
	}
	r := Response{Status: ar.StatusCode, Header: http.Header{}, Body: ar.Body}
	for k, v := range ar.Headers {
		r.Header.Set(k, v)
	}
	for k, vs := range ar.MultiValueHeaders {
		r.Header.Del(k)
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	if ar.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ar.Body)
		if err != nil {
			return Response{}, errors.New("isBase64Encoded with a body that is not base64")
		}
		r.Body = string(b)
	}
	return r, nil
}
