// Package backend is the module's root package: it imports every function
// package, whose init registers its entry points (Login, GetToken,
// Validate, ValidateHTTP), so that cmd/local and the end-to-end tests serve
// them all. A deploy does not build it: deploy.sh gives each function's
// upload a root package of its own that imports that function alone, so
// that its binary links and initialises only its own dependencies.
package backend

import (
	_ "impo.com.uy/copetes/backend/functions/gettoken"
	_ "impo.com.uy/copetes/backend/functions/login"
	_ "impo.com.uy/copetes/backend/functions/validate"
)
