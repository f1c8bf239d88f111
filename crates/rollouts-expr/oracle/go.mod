module oracle

go 1.24.9

require github.com/expr-lang/expr v1.17.8
