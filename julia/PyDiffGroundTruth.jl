"""
    PyDiffGroundTruth

Ground-truth diffusion fields exactly as the original genData.jl computed them, for pydiff's
`julia` backend.  For each source image `img` (L×L, Float32) it solves

    du/dt = D (M u + u M) - γ u + img,   u(0) = img,   M = Tridiagonal(1, -2, 1)

on `t ∈ (0, t_max)` with `ROCK2()` at default tolerances, and returns `u(t_max) / maximum(u(t_max))`
and `maximum(u(t_max))`.  Zero values outside the lattice are implied by `M`.
"""
module PyDiffGroundTruth

using LinearAlgebra: Tridiagonal
using OrdinaryDiffEq: ODEProblem, ROCK2, solve

export solve_batch

"""
    second_difference(L) -> Tridiagonal{Float32}

The 1-D second difference with zero values outside `1:L`.
"""
second_difference(L::Integer) = Tridiagonal(ones(Float32, L - 1), fill(-2.0f0, L), ones(Float32, L - 1))

# Out-of-place right-hand side, as genData.jl's `f` (M u acts along x, u M along y).
function rhs(u, p, t)
    M, D, γ, img = p
    return D .* (M * u .+ u * M) .- γ .* u .+ img
end

"""
    solve_one(img, D, γ, t_max) -> (field::Matrix{Float32}, field_max::Float32)
"""
function solve_one(img::Matrix{Float32}, D::Float32, γ::Float32, t_max::Float64)
    M = second_difference(size(img, 1))
    problem = ODEProblem{false}(rhs, copy(img), (0.0, t_max), (M, D, γ, img))
    solution = solve(problem, ROCK2(); save_everystep = false, save_start = false)
    u = solution.u[end]
    peak = maximum(u)
    return u ./ peak, peak
end

"""
    solve_batch(images, D, γ, t_max) -> (fields::Array{Float32,3}, maxima::Vector{Float32})

`images` is n×L×L with the sample index first, the order pydiff's arrays use; `[s, i, j]` is
lattice cell `x = i, y = j` of sample `s`.  Samples are solved on all Julia threads.
"""
function solve_batch(images::AbstractArray{<:Real,3}, D::Real, γ::Real, t_max::Real)
    batch = Array{Float32,3}(images)
    n = size(batch, 1)
    fields = similar(batch)
    maxima = Vector{Float32}(undef, n)
    Threads.@threads for s in 1:n
        field, peak = solve_one(batch[s, :, :], Float32(D), Float32(γ), Float64(t_max))
        fields[s, :, :] .= field
        maxima[s] = peak
    end
    return fields, maxima
end

end # module
