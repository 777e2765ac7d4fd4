package tenant

// SetAfterStep makes fn run after each purge step; an error it returns stops
// the purge there, as a crash would.
func SetAfterStep(l *Lifecycle, fn func(step int) error) { l.afterStep = fn }

// PurgeSteps is how many steps a purge completes after recording itself;
// PurgeDatabaseDropped is the step that drops the tenant's database.
const (
	PurgeSteps           = purgeDone
	PurgeDatabaseDropped = purgeDatabaseDropped
)
