"""
    PyDiffGroundTruth

Ground-truth diffusion fields exactly as the original genData.jl computed them, for pydiff's
`julia` backend.  For each source image `img` (L×L, Float32) it solves

    du/dt = D (M u + u M) - γ u + img,   u(0) = img,   M = Tridiagonal(1, -2, 1)

on `t ∈ (0, t_max)` with `ROCK2()` at default tolerances, and returns `u(t_max) / maximum(u(t_max))`
and `maximum(u(t_max))`.  Zero values outside the lattice are implied by `M`.

`solve_batch_varied` does the same for pydiff's varied family: a diffusivity map per sample and
any wall condition, with the flux form of docs/problem.md (harmonic-mean conductances between
neighbours; `dirichlet`: a ghost cell at 0 with the cell's own D; `neumann`: no wall flux;
`periodic`: wrapping).
"""
module PyDiffGroundTruth

using LinearAlgebra: Tridiagonal
using OrdinaryDiffEq: ODEProblem, ROCK2, solve

export solve_batch, solve_batch_varied

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

harmonic(a, b) = 2.0f0 * a * b / (a + b)

"""
    conductances(D, boundary) -> (hx, hy, wall)

Face conductances along x (`hx[i, j]` between cells `(i, j)` and `(i+1, j)`) and y, and the
diagonal the Dirichlet walls add (`D` of the cell per wall face; zero for the other walls).
"""
function conductances(D::Matrix{Float32}, boundary::String)
    wall = zeros(Float32, size(D))
    if boundary == "periodic"
        return harmonic.(D, circshift(D, (-1, 0))), harmonic.(D, circshift(D, (0, -1))), wall
    end
    hx = harmonic.(D[1:end-1, :], D[2:end, :])
    hy = harmonic.(D[:, 1:end-1], D[:, 2:end])
    if boundary == "dirichlet"
        wall[1, :] .+= D[1, :]
        wall[end, :] .+= D[end, :]
        wall[:, 1] .+= D[:, 1]
        wall[:, end] .+= D[:, end]
    end
    return hx, hy, wall
end

# du/dt = Σ_j h_ij (u_j - u_i) - (wall + γ) u + img
function varied_rhs(u, p, t)
    hx, hy, wall, γ, img, periodic = p
    out = img .- (wall .+ γ) .* u
    if periodic
        fx = hx .* (circshift(u, (-1, 0)) .- u)   # into cell i from i + 1
        fy = hy .* (circshift(u, (0, -1)) .- u)
        return out .+ fx .- circshift(fx, (1, 0)) .+ fy .- circshift(fy, (0, 1))
    end
    fx = hx .* (u[2:end, :] .- u[1:end-1, :])
    fy = hy .* (u[:, 2:end] .- u[:, 1:end-1])
    out[1:end-1, :] .+= fx
    out[2:end, :] .-= fx
    out[:, 1:end-1] .+= fy
    out[:, 2:end] .-= fy
    return out
end

"""
    solve_batch_varied(images, diffusivity, γ, t_max, boundary) -> (fields, maxima)

As `solve_batch`, with an n×L×L diffusivity map per sample and `boundary` one of "dirichlet",
"neumann", "periodic".
"""
function solve_batch_varied(images::AbstractArray{<:Real,3}, diffusivity::AbstractArray{<:Real,3}, γ::Real,
                            t_max::Real, boundary::String)
    batch = Array{Float32,3}(images)
    maps = Array{Float32,3}(diffusivity)
    n = size(batch, 1)
    fields = similar(batch)
    maxima = Vector{Float32}(undef, n)
    Threads.@threads for s in 1:n
        img = batch[s, :, :]
        hx, hy, wall = conductances(maps[s, :, :], boundary)
        parameters = (hx, hy, wall, Float32(γ), img, boundary == "periodic")
        problem = ODEProblem{false}(varied_rhs, copy(img), (0.0, Float64(t_max)), parameters)
        u = solve(problem, ROCK2(); save_everystep = false, save_start = false).u[end]
        maxima[s] = maximum(u)
        fields[s, :, :] .= u ./ maxima[s]
    end
    return fields, maxima
end

end # module
