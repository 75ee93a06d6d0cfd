// Command hello is the baseline of the cold-start measurement: a hello-world
// aws-lambda-go function that answers an API Gateway event with a fixed 200.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, json.RawMessage) (map[string]any, error) {
		return map[string]any{"statusCode": 200, "body": "hello"}, nil
	})
}
