// Package samtest tests the deployment files at the root of the module, which no Go
// code imports: template.yaml (read with goformation, the Globals merged into each
// function as SAM merges them), the Makefile targets that `sam build` runs,
// samconfig.toml, and the sample events and env.json under events/.
//
// There is no SAM CLI or Docker engine where these tests run, so they prove what can be
// proved with real parsers and the real build: the template's structure and values,
// the events' shapes against aws-lambda-go's types, the environment against
// pkg/config, and the bootstraps as built for provided.al2023 on arm64 (with CI set;
// elsewhere what they link, see TestFunctionsBuild).
//
// The package has no API; it exists for its tests.
package samtest
