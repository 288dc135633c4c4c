// Package backend is the root package that the Go buildpack builds when a
// function is deployed: it imports every function package, whose init
// registers its entry points, so that one source tree deploys as each
// function with its own --entry-point (Login, GetToken, Validate, ValidateHTTP).
package backend

import (
	_ "github.com/GoogleCloudPlatform/functions-framework-go/functions"

	_ "impo.com.uy/copetes/backend/functions/gettoken"
	_ "impo.com.uy/copetes/backend/functions/login"
	_ "impo.com.uy/copetes/backend/functions/validate"
)
