// Command getproduct is the getProduct function. Built as bootstrap for provided.al2023 it runs
// under AWS Lambda; run anywhere else it serves HTTP on $PORT (OpenFaaS of-watchdog
// http mode). Its configuration comes from the environment; see pkg/config.
package main

import (
	"fmt"
	"os"

	"github.com/acmestore/storeapi/pkg/app"
)

func main() {
	if err := app.Run(app.GetProduct); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", app.GetProduct.Name, err)
		os.Exit(1)
	}
}
