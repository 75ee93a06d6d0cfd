package redisclient

import (
	"context"
	"fmt"

	"github.com/acmestore/storeapi/pkg/secret"
)

// secretCredentials returns go-redis credentials that come from the Secrets Manager
// secret secretARN (REDIS_PASSWORD_SECRET_ARN). go-redis calls the function for every
// new connection: the first call reads the secret, later ones use the value kept for
// the life of the process, and a failed read is tried again by the next connection.
// username is used when the secret names none. Building it does no I/O.
func secretCredentials(secretARN, username string) (func(context.Context) (string, string, error), error) {
	p, err := secret.New(secretARN, secret.Options{})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (string, string, error) {
		u, pw, err := p.Credentials(ctx)
		if err != nil {
			return "", "", fmt.Errorf("redisclient: REDIS_PASSWORD_SECRET_ARN: %w", err)
		}
		if u == "" {
			u = username
		}
		return u, pw, nil
	}, nil
}
